"""The Hamsa API's response envelope `{"success", "message", "data"}`: `data` holds one tool or a list.

What the API answers is what people export, so it is read as it is. Its tools are API bodies whose
`toolSettings.timeout` is in milliseconds (a guide-shaped tool in `data` is read as the guide's).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..hamsa.format import is_envelope
from . import guide, hamsa_api
from .base import NEITHER_SHAPE, NOT_AN_OBJECT, NormalisedEntry, ShapeError

__all__ = ["READER", "EnvelopeReader"]


class EnvelopeReader:
    name = "hamsa-envelope"

    def detect(self, document: Any) -> bool:
        return is_envelope(document)

    def entries(self, document: Any) -> Iterable[tuple[str, Any]]:
        data = document["data"]
        if isinstance(data, list):
            return [(f"data[{i}]", entry) for i, entry in enumerate(data)]
        return [("data", data)]

    def normalise(self, entry: Any) -> NormalisedEntry:
        if not isinstance(entry, dict):
            raise ShapeError("", NOT_AN_OBJECT)
        if hamsa_api.READER.detect(entry):
            return hamsa_api.read(entry, timeout_in_ms=True)
        if guide.READER.detect(entry):
            return guide.read(entry)
        raise ShapeError("", NEITHER_SHAPE)


READER = EnvelopeReader()
