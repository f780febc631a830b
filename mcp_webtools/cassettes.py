"""Recorded answers: one cassette file per example, and the two `Sender`s that write and read them.

A cassette holds each exchange of one example's call: the request as sent (method, URL, headers,
body, after the tool's auth flow) and the answer as received (status, reason, headers, body). A
JSON body is kept as JSON when that gives back its exact bytes, so a review reads it as an object.
Every secret in it is written as the `${NAME}` it was read from (`Concealer`, from each
definition's `references`); a secret with no reference (a literal in the config, a token learned
at run time) is written `***`. So a cassette can be reviewed and committed, and the same
definition builds the same cassette request wherever its variables hold other values (CI).

`RecordingSender` sits where the executor is (`serving/runtime.open_webtools(innermost=...)`) and
notes each exchange it passes on; `ReplayingSender` takes the executor's place and answers from
the cassette without touching the network. When the request a definition builds now differs from
the recorded one, it sends nothing and leaves a unified diff of the two, both printed by
`OutboundRequest.as_text` (the dry run's printer), secrets as `${NAME}`.

Our own `User-Agent` (it carries our version) and an `Idempotency-Key` the executor adds per call
are not part of the comparison: they change without the definition changing.
"""

from __future__ import annotations

import base64
import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .definitions import slugify
from .errors import RequestNotSent
from .redaction import MIN_SECRET_LENGTH, Redactor, secret_encodings
from .requests import USER_AGENT, OutboundRequest
from .retries import parse_retry_after
from .sending import AttemptCount, Sender, SendPolicy, UpstreamResponse

__all__ = [
    "Cassette",
    "CassetteDeck",
    "Concealer",
    "RecordingSender",
    "ReplayingSender",
    "cassette_path",
]

CASSETTE_VERSION = 1
# Headers that change from call to call or from release to release, not with the definition.
_NOT_COMPARED = frozenset({"idempotency-key"})


class Concealer:
    """Text with each secret read from `${...}` as that reference, and every other secret as `***`.

    `references`: (value, reference) pairs, a tool's `ToolDefinition.references`. Each value is
    also looked for in the forms it takes in a URL or a JSON string (as the redactor does).
    """

    def __init__(self, references: Iterable[tuple[str, str]], redactor: Redactor) -> None:
        forms: dict[str, str] = {}
        for value, reference in sorted(references):
            if len(value) >= MIN_SECRET_LENGTH:
                for form in secret_encodings(value):
                    forms.setdefault(form, reference)
        self._forms = forms
        # Longest first, so that a value holding another is replaced whole.
        ordered = sorted(forms, key=lambda form: (-len(form), form))
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._redactor = redactor

    def __call__(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(lambda match: self._forms[match.group()], text)
        return self._redactor(text)


def cassette_path(directory: Path, tool: str, example: str) -> Path:
    """`DIR/<tool>/<example as a slug>.json`: one reviewable file per example."""
    folder = tool if not tool.startswith(".") else f"_{tool}"  # never `.` or `..`
    return directory / folder / f"{slugify(example) or 'example'}.json"


@dataclass
class Cassette:
    """One example's exchanges, as written to its file (secrets concealed)."""

    tool: str
    example: str
    exchanges: list[dict[str, Any]] = field(default_factory=list)

    def dump(self, path: Path) -> None:
        document = {"version": CASSETTE_VERSION, "tool": self.tool, "example": self.example}
        document["exchanges"] = self.exchanges
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Cassette:
        """Raises ValueError saying what is wrong with the file (never its content)."""
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"cassette {path} is not valid JSON ({exc}); record it again with --record") from None
        exchanges = document.get("exchanges") if isinstance(document, dict) else None
        if not isinstance(exchanges, list) or not all(_is_exchange(item) for item in exchanges):
            raise ValueError(f"cassette {path} has no valid `exchanges` list; record it again with --record")
        return cls(str(document.get("tool", "")), str(document.get("example", "")), exchanges)


def _is_exchange(item: Any) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
        return False
    response = item.get("response")
    return isinstance(response, dict) and isinstance(response.get("status"), int)


class CassetteDeck:
    """The cassette of the example running now, shared by the recording or replaying sender.

    `mcp-webtools test` runs examples one at a time: before each it calls `begin`, after it reads
    `kept()` (to write when recording) and `difference` (when replaying). Exchanges are kept as
    sent and received and concealed only in `kept()`: a token an auth flow fetches is learned by
    the redactor after its answer has passed the recorder, and must still be hidden.
    """

    def __init__(self) -> None:
        self.conceal: Concealer = Concealer((), Redactor())
        self.sent: list[tuple[OutboundRequest, UpstreamResponse]] = []
        self.replaying: list[dict[str, Any]] = []
        self.replayed = 0
        self.difference: str | None = None

    def begin(self, conceal: Concealer, recorded: Cassette | None = None) -> None:
        self.conceal = conceal
        self.sent = []
        self.replaying = list(recorded.exchanges) if recorded is not None else []
        self.replayed = 0
        self.difference = None

    def unplayed(self) -> int:
        """Recorded exchanges the call did not ask for (its flow now sends fewer requests)."""
        return len(self.replaying) - self.replayed

    def kept(self) -> list[dict[str, Any]]:
        """The exchanges recorded so far, as a cassette keeps them."""
        return [
            {"request": self.request(request), "response": self.response(response)} for request, response in self.sent
        ]

    def request(self, request: OutboundRequest) -> dict[str, Any]:
        """The request as a cassette keeps it."""
        conceal = self.conceal
        return {
            "method": request.method,
            "url": conceal(request.url),
            "headers": [f"{name}: {conceal(value)}" for name, value in request.headers],
            **_body(request.body, conceal),
        }

    def response(self, response: UpstreamResponse) -> dict[str, Any]:
        """The answer as a cassette keeps it."""
        conceal = self.conceal
        kept: dict[str, Any] = {"status": response.status, "reason": response.reason}
        kept["headers"] = [f"{name}: {conceal(value)}" for name, value in response.headers]
        kept.update(_body(response.body, conceal))
        if response.truncated:
            kept["truncated"] = True
        if response.note:
            kept["note"] = conceal(response.note)
        return kept


# How a JSON body may have been written; a body written one of these ways is kept as `json` (readable
# in a review), with `jsonStyle` when not compact; any other body is kept as text, byte for byte.
_JSON_STYLES: dict[str, dict[str, Any]] = {
    "compact": {"separators": (",", ":")},
    "spaced": {},
    "indented": {"indent": 2},
}


def _body(body: bytes | None, conceal: Concealer) -> dict[str, Any]:
    """`{"json": value}` or `{"body": text}` (secrets concealed), `{"bodyBase64": ...}` when not UTF-8.

    Only a body that `_kept_body` gives back exactly is kept as `json`.
    """
    if body is None:
        return {"body": None}
    try:
        text = conceal(body.decode("utf-8"))
    except UnicodeDecodeError:
        return {"bodyBase64": base64.b64encode(body).decode("ascii")}
    try:
        value = json.loads(text)
    except ValueError:
        return {"body": text}
    for style, options in _JSON_STYLES.items():
        if isinstance(value, (dict, list)) and json.dumps(value, ensure_ascii=False, **options) == text:
            return {"json": value} if style == "compact" else {"json": value, "jsonStyle": style}
    return {"body": text}


def _kept_body(kept: dict[str, Any]) -> bytes | None:
    if "bodyBase64" in kept:
        return base64.b64decode(kept["bodyBase64"])
    if "json" in kept:
        options = _JSON_STYLES.get(str(kept.get("jsonStyle", "compact")), {})
        return json.dumps(kept["json"], ensure_ascii=False, **options).encode("utf-8")
    body = kept.get("body")
    return None if body is None else str(body).encode("utf-8")


class RecordingSender:
    """A `Sender` in the executor's place that passes each request on and notes the exchange."""

    def __init__(self, inner: Sender, deck: CassetteDeck) -> None:
        self.inner, self.deck = inner, deck

    async def send(
        self, request: OutboundRequest, policy: SendPolicy, *, deadline: float, count: AttemptCount | None = None
    ) -> UpstreamResponse:
        response = await self.inner.send(request, policy, deadline=deadline, count=count)
        self.deck.sent.append((request, response))
        return response


class ReplayingSender:
    """A `Sender` in the executor's place that answers from the cassette: no network at all."""

    def __init__(self, deck: CassetteDeck) -> None:
        self.deck = deck

    async def send(
        self, request: OutboundRequest, policy: SendPolicy, *, deadline: float, count: AttemptCount | None = None
    ) -> UpstreamResponse:
        deck = self.deck
        sent = deck.request(request)
        position = deck.replayed
        deck.replayed += 1
        if position >= len(deck.replaying):
            deck.difference = (
                f"the call sent request {position + 1}, but the recording has {len(deck.replaying)}; "
                "record again with --record if the change is intended:\n" + printed(sent)
            )
            raise RequestNotSent("the recording has no answer for this request")
        recorded = deck.replaying[position]
        if _compared(recorded["request"]) != _compared(sent):
            deck.difference = request_diff(recorded["request"], sent)
            raise RequestNotSent("the request differs from the recorded one")
        if count is not None:
            count.sent += 1
        return _response(recorded["response"])


def _headers(kept: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """A cassette's `"Name: value"` lines as pairs."""
    pairs = (str(line).partition(":") for line in kept.get("headers", []))
    return tuple((name.strip(), value.strip()) for name, _, value in pairs)


def _compared(kept: dict[str, Any]) -> dict[str, Any]:
    ours = USER_AGENT.partition("/")[0] + "/"
    headers = [
        (name.lower(), value)
        for name, value in _headers(kept)
        if name.lower() not in _NOT_COMPARED and not (name.lower() == "user-agent" and value.startswith(ours))
    ]
    return {"method": kept.get("method"), "url": kept.get("url"), "headers": headers, "body": _kept_body(kept)}


def printed(kept: dict[str, Any]) -> str:
    """A cassette request as the dry run prints a request (`OutboundRequest.as_text`), URL in full."""
    request = OutboundRequest(str(kept.get("method")), str(kept.get("url")), _headers(kept), _kept_body(kept))
    return request.as_text(absolute=True)


def request_diff(recorded: dict[str, Any], sent: dict[str, Any]) -> str:
    """A unified diff from the recorded request to the one built now (both concealed)."""
    lines = difflib.unified_diff(
        printed(recorded).splitlines(), printed(sent).splitlines(), "recorded", "now", lineterm="", n=2
    )
    return "\n".join(lines)


def _response(kept: dict[str, Any]) -> UpstreamResponse:
    headers = _headers(kept)
    lookup = {name.lower(): value for name, value in headers}
    return UpstreamResponse(
        status=int(kept["status"]),
        reason=str(kept.get("reason", "")),
        content_type=lookup.get("content-type", ""),
        body=_kept_body(kept) or b"",
        truncated=bool(kept.get("truncated", False)),
        elapsed_ms=0.0,
        retry_after=parse_retry_after(lookup.get("retry-after")),
        note=str(kept.get("note", "")),
        headers=headers,
    )
