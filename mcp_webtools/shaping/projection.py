"""Shaping a parsed upstream answer into what the model and a voice flow read.

Per tool, in this order:

1. `responseFields` (projection): keep only the listed paths. The result is the response with only
   those branches, so it stays valid against the response's schema minus `required`. Every
   container a path passes through is kept if it exists (`customer.name` on `{"customer": {}}`
   gives `{"customer": {}}`); `orders[*].id` keeps one element per order (`{}` for an order
   without an `id`), so counts survive; lists keep the chosen elements in their original order
   (`orders[2]` alone becomes a one-element list). Missing paths are simply absent.
2. `flatten`: the structured content becomes Hamsa's "variables auto-created" map,
   `{"customer.name": ..., "orders[0].id": ...}`: one key per leaf (scalar or empty container),
   each key a path in the same syntax, with the original list indexes.
3. The envelope: an object body is the structured content itself; any other body goes under
   `data`. `api_response_status` (the HTTP status) is always added, so flows can route on it.
4. `maxResultBytes`: neither the structured content nor the text may exceed it (compact UTF-8
   JSON). Over budget, every list is cut to its first K items, every object to its first 8K
   fields and every string to 8K characters plus `…[+N chars]`, with the largest K that fits,
   and `api_response_truncated` says what was dropped. JSON is never cut mid-document.
5. `outputSchema` (see `output_schema.py`) describes the structured content without our two keys; the
   published schema adds them. A result that does not conform becomes a tool error instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..errors import OutputMismatch
from .output_schema import (
    DATA_KEY,
    RESERVED_KEYS,
    STATUS_KEY,
    TRUNCATED_KEY,
    OutputSchema,
    check_output_schema,
)
from .paths import Path, Segment, format_path, parse_path

__all__ = [
    "DATA_KEY",
    "DEFAULT_MAX_RESULT_BYTES",
    "MIN_MAX_RESULT_BYTES",
    "NO_BODY",
    "RESERVED_KEYS",
    "STATUS_KEY",
    "TRUNCATED_KEY",
    "ResponseShaping",
    "Shaped",
    "check_output_schema",
    "format_path",
    "parse_path",
    "response_shaping",
]

DEFAULT_MAX_RESULT_BYTES = 64 * 1024
MIN_MAX_RESULT_BYTES = 1024  # room for the envelope and the truncation report at the tightest cut
FIELDS_PER_ITEM = 8  # an object keeps 8 fields, and a string 8 characters, per list item kept
LISTED_CUTS = 5
LISTED_PATH_CHARS = 60


class _NoBody:
    def __repr__(self) -> str:
        return "NO_BODY"


NO_BODY: Any = _NoBody()  # an answer with nothing to put in `data` (empty, binary, an image)
_MISSING: Any = object()

# --- projection: the response reduced to a tree of kept branches ----------------------------------


@dataclass(slots=True)
class _List:
    """A kept list: `(original index, kept value)` pairs, so the flat view can name the real index."""

    items: list[tuple[int, Any]]


@dataclass(slots=True)
class _Node:
    whole: bool = False  # a path ends here: keep everything below
    keys: dict[str, _Node] = field(default_factory=dict)
    indexes: dict[int, _Node] = field(default_factory=dict)
    every: _Node | None = None


def _trie(paths: tuple[Path, ...]) -> _Node:
    root = _Node()
    for path in paths:
        node = root
        for segment in path:
            if segment is None:
                node.every = node.every or _Node()
                node = node.every
            elif isinstance(segment, int):
                node = node.indexes.setdefault(segment, _Node())
            else:
                node = node.keys.setdefault(segment, _Node())
        node.whole = True
    return root


def _select(value: Any, nodes: list[_Node]) -> Any:
    if any(node.whole for node in nodes):
        return value
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for key, child in value.items():
            below = [node.keys[key] for node in nodes if key in node.keys]
            if below and (selected := _select(child, below)) is not _MISSING:
                kept[key] = selected
        return kept
    if isinstance(value, list):
        wanted: dict[int, list[_Node]] = {}
        for node in nodes:
            for index, child_node in node.indexes.items():
                position = index + len(value) if index < 0 else index
                if 0 <= position < len(value):
                    wanted.setdefault(position, []).append(child_node)
        every = [node.every for node in nodes if node.every is not None]
        positions = range(len(value)) if every else sorted(wanted)
        items = []
        for position in positions:
            selected = _select(value[position], every + wanted.get(position, []))
            if selected is not _MISSING:
                items.append((position, selected))
        return _List(items)
    return _MISSING  # a path goes on below a scalar: that path is missing


# --- rendering under caps, and the budget ------------------------------------------------------


@dataclass(slots=True)
class _Cuts:
    """What one rendering left out: totals, and the first few places, like paths in `responseFields`.

    Cuts at the same place in different list items are listed once, as `items[*].note`. Paths
    are where the cut is in the structured content: under `data` for a body that is not an object.
    """

    prefix: tuple[Segment, ...] = ()
    items: int = 0
    characters: int = 0
    count: int = 0
    listed: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def add(self, path: list[Segment], kept: int, total: int, unit: str) -> None:
        if unit == "characters":
            self.characters += total - kept
        else:
            self.items += total - kept
        self.count += 1
        path = [*self.prefix, *path]
        general = format_path([None if isinstance(segment, int) else segment for segment in path])
        entry = self.listed.get((general, unit))
        if entry is not None:
            entry["path"] = _short(general)
            entry["total"] = max(entry["total"], total)
            entry["places"] += 1
        elif len(self.listed) < LISTED_CUTS:
            self.listed[(general, unit)] = {
                "path": _short(format_path(path)), "kept": kept, "total": total, "unit": unit, "places": 1
            }  # fmt: skip

    @property
    def report(self) -> list[dict[str, Any]]:
        return list(self.listed.values())


def _short(path: str) -> str:
    return path if len(path) <= LISTED_PATH_CHARS else path[: LISTED_PATH_CHARS - 1] + "…"


def _cut_string(text: str, limit: int) -> tuple[str, int]:
    if len(text) <= limit:
        return text, 0
    marker = f"…[+{len(text) - limit} chars]"
    if len(text) <= limit + len(marker):
        return text, 0  # the marker would cost more than it saves
    return text[:limit] + marker, len(text) - limit


def _render(tree: Any, cap: int | None, cuts: _Cuts, flat: dict[str, Any] | None, path: list[Segment]) -> Any:
    """The tree as JSON with every list cut to `cap` items (None: no cuts); leaves also go to `flat`."""
    if isinstance(tree, dict):
        members = list(tree.items())
        if cap is not None and len(members) > cap * FIELDS_PER_ITEM:
            cuts.add(path, cap * FIELDS_PER_ITEM, len(members), "fields")
            members = members[: cap * FIELDS_PER_ITEM]
        out: Any = {}
        for key, child in members:
            path.append(key)
            out[key] = _render(child, cap, cuts, flat, path)
            path.pop()
    elif isinstance(tree, (list, _List)):
        items: Any = tree.items if isinstance(tree, _List) else tree
        if cap is not None and len(items) > cap:
            cuts.add(path, cap, len(items), "items")
            items = items[:cap]
        out = []
        for index, child in items if isinstance(tree, _List) else enumerate(items):
            path.append(index)
            out.append(_render(child, cap, cuts, flat, path))
            path.pop()
    elif isinstance(tree, str) and cap is not None:
        out, dropped = _cut_string(tree, cap * FIELDS_PER_ITEM)
        if dropped:
            cuts.add(path, cap * FIELDS_PER_ITEM, len(tree), "characters")
    else:
        out = tree
    if flat is not None and path and (not isinstance(out, (dict, list)) or not out):
        flat[format_path(path)] = out
    return out


def _size(value: Any) -> int:
    return len(_dumps(value).encode("utf-8", "surrogatepass"))


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Shaped:
    """`structured` is the structuredContent; `text` the text content for the body (None: no body);
    `note` a second text block telling the model what was cut (None: nothing was)."""

    structured: dict[str, Any]
    text: str | None
    note: str | None = None


# --- the per-tool shaping ------------------------------------------------------------------------


class ResponseShaping:
    """One tool's `responseFields`, `flatten`, `maxResultBytes` and `outputSchema`, compiled once."""

    def __init__(
        self,
        response_fields: tuple[str, ...] = (),
        flatten: bool = False,
        max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
        output_schema: dict[str, Any] | None = None,
    ) -> None:
        self.paths = tuple(parse_path(text) for text in response_fields)
        self._trie = _trie(self.paths) if self.paths else None
        self.flatten = flatten
        self.max_result_bytes = max(max_result_bytes, MIN_MAX_RESULT_BYTES)
        self._schema = OutputSchema(output_schema) if output_schema is not None else None
        # What tools/list publishes: the declared schema plus our keys (None when none was declared).
        self.output_schema = self._schema.published if self._schema is not None else None

    @property
    def needs_whole_body(self) -> bool:
        """Whether a body cut off at maxResponseBytes cannot be served (it cannot be parsed)."""
        return bool(self.paths) or self.flatten or self.output_schema is not None

    def status_only(self, status: int) -> dict[str, Any] | None:
        """`{"api_response_status": status}` for an error result, unless it would break the outputSchema."""
        structured = {STATUS_KEY: status}
        return structured if self._problem(structured) is None else None

    def _problem(self, structured: dict[str, Any]) -> str | None:
        return self._schema.problem(structured) if self._schema is not None else None

    def shape(self, body: Any, status: int, *, is_json: bool) -> Shaped:
        """Project, flatten, wrap and fit `body` (parsed JSON, a text, or NO_BODY) to the budget.

        Raises `OutputMismatch` when the result does not match the outputSchema, and
        `RecursionError` for a body nested too deeply to walk.
        """
        if body is NO_BODY:
            tree = _MISSING
        elif not is_json:
            tree = body
        elif self._trie is not None and isinstance(body, (dict, list)):
            tree = _select(body, [self._trie])
        else:
            tree = body  # no responseFields; and a JSON scalar has no fields to pick: it is kept whole
        flat = self.flatten and is_json and isinstance(tree, (dict, list, _List))
        full = self._attempt(tree, status, flat, is_json, None, None)
        if (problem := self._problem(full.structured)) is not None:
            raise OutputMismatch(f"the answer does not match this tool's outputSchema: {problem}")
        full_size = self._measure(full)
        if full_size <= self.max_result_bytes:
            return full
        best = self._fit(tree, status, flat, is_json, full_size)
        if (problem := self._problem(best.structured)) is not None:
            raise OutputMismatch(
                f"the answer is larger than this tool's maxResultBytes ({self.max_result_bytes} bytes) and the "
                f"shortened answer does not match its outputSchema: {problem}"
            )
        return best

    def _fit(self, tree: Any, status: int, flat: bool, is_json: bool, full_size: int) -> Shaped:
        """A large cap that fits: within 1/16 of the largest, as size grows with the cap (near enough).

        Only verified fits are kept. The search starts from a guess and gallops, so most renderings
        are about the size of the budget rather than of the whole body. It ends: at a cap beyond
        every list, object and string nothing is cut, and the uncut result did not fit.
        """

        def fits(cap: int) -> Shaped | None:
            attempt = self._attempt(tree, status, flat, is_json, cap, full_size)
            return attempt if self._measure(attempt) <= self.max_result_bytes else None

        best = fits(0) or self._attempt(tree, status, flat, is_json, 0, full_size, list_cuts=False)
        low, high, guess = 0, None, max(1, 1024 * self.max_result_bytes // full_size)
        while high is None:
            if (attempt := fits(guess)) is not None:
                low, best, guess = guess, attempt, guess * 2
            else:
                high = guess
        while high - low > max(1, low // 16):
            middle = (low + high) // 2
            if (attempt := fits(middle)) is not None:
                low, best = middle, attempt
            else:
                high = middle
        return best

    def _measure(self, shaped: Shaped) -> int:
        text = len(shaped.text.encode("utf-8", "surrogatepass")) if shaped.text is not None else 0
        return max(_size(shaped.structured), text)

    def _attempt(
        self,
        tree: Any,
        status: int,
        flat: bool,
        is_json: bool,
        cap: int | None,
        full_size: int | None,
        *,
        list_cuts: bool = True,
    ) -> Shaped:
        cuts = _Cuts(() if flat or isinstance(tree, dict) else (DATA_KEY,))
        flat_view: dict[str, Any] | None = {} if flat else None
        if tree is _MISSING or (cap is None and not flat and not self._trie):
            body = tree  # nothing to cut, collect or unwrap: skip the walk
        else:
            body = _render(tree, cap, cuts, flat_view, [])
        content = flat_view if flat_view is not None else body
        if isinstance(content, dict):
            structured = dict(content)
            structured.pop(STATUS_KEY, None)  # ours wins, and goes last
            structured.pop(TRUNCATED_KEY, None)
        else:
            structured = {} if content is _MISSING else {DATA_KEY: content}
        structured[STATUS_KEY] = status
        text = None if body is _MISSING else _dumps(body) if is_json else body
        note = None
        if cuts.count:
            structured[TRUNCATED_KEY] = {
                "maxResultBytes": self.max_result_bytes,
                "originalBytes": full_size,
                "droppedItems": cuts.items,
                "droppedCharacters": cuts.characters,
                "cuts": cuts.report if list_cuts else [],
            }
            note = self._note(cuts, full_size)
        return Shaped(structured, text, note)

    def _note(self, cuts: _Cuts, full_size: int | None) -> str:
        said = "; ".join(_say_cut(cut) for cut in cuts.report)
        if (unlisted := cuts.count - sum(cut["places"] for cut in cuts.report)) > 0:
            said += f"; {unlisted} more cut(s)"
        return (
            f"[Shortened to fit this tool's result budget of {self.max_result_bytes} bytes (the full result is "
            f"{full_size} bytes). {said}. Lists keep their first items; cut text ends with …[+N chars].]"
        )


def _say_cut(cut: dict[str, Any]) -> str:
    where = cut["path"] or "the response"
    if cut["places"] == 1:
        return f"{where}: kept {cut['kept']} of {cut['total']} {cut['unit']}"
    return f"{where}: kept {cut['kept']} of up to {cut['total']} {cut['unit']} ({cut['places']} places)"


@lru_cache(maxsize=1024)
def _compiled(
    response_fields: tuple[str, ...], flatten: bool, max_result_bytes: int, schema_text: str | None
) -> ResponseShaping:
    schema = json.loads(schema_text) if schema_text is not None else None
    return ResponseShaping(response_fields, flatten, max_result_bytes, schema)


def response_shaping(
    response_fields: tuple[str, ...] = (),
    flatten: bool = False,
    max_result_bytes: int | None = None,
    output_schema: dict[str, Any] | None = None,
) -> ResponseShaping:
    """The compiled shaping for these settings, built once per distinct settings (cached)."""
    schema_text = json.dumps(output_schema) if output_schema is not None else None
    return _compiled(tuple(response_fields), flatten, max_result_bytes or DEFAULT_MAX_RESULT_BYTES, schema_text)
