"""An immutable snapshot of the loaded tools, with everything a call needs prepared once.

`Toolset.from_definitions` compiles each tool's argument validator, request template, send policy
(auth flow included), response shaping and MCP listing entry, builds the `tools/list` result once,
and gathers every secret into one `Redactor`. A reload builds a new `Toolset` and swaps one
reference; what the old one learned while running (secrets to hide, OAuth2 tokens in its
`TokenCache`) is handed to the new one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import mcp_types as types

from .arguments import ArgumentValidator
from .auth import Auth, BearerAuth, auth_from_block
from .definitions import ToolDefinition
from .endpoints import EndpointConfig
from .forwarding import ForwardCaller, ForwardCallerAuth
from .loading import ConfigProblem
from .oauth2 import TokenCache
from .redaction import LearnedSecrets, Redactor, configured_secrets
from .requests import DEFAULT_MAX_REQUEST_BYTES, RequestTemplate
from .results import META_TOOL
from .sending import SendPolicy
from .shaping.projection import ResponseShaping
from .voice import (
    DEFAULT_ASYNC_PROGRESS_SECONDS,
    DEFAULT_DELAYED_MESSAGE_SECONDS,
    CallProgress,
    SendProgress,
    SpokenMessages,
    published_messages,
)

__all__ = ["PreparedTool", "Toolset", "annotations_for"]


@functools.cache
def annotations_for(method: str) -> types.ToolAnnotations:
    """Hints that say truthfully what an HTTP method does (clients treat them as untrusted).

    One shared object per method (nothing mutates a listing): a thousand tools need not hold a
    thousand copies.
    """
    return types.ToolAnnotations(
        read_only_hint=method == "GET",
        destructive_hint=method == "DELETE",
        idempotent_hint=method in ("GET", "PUT", "DELETE"),
        open_world_hint=True,
    )


@dataclass(frozen=True, slots=True)
class PreparedTool:
    definition: ToolDefinition
    validator: ArgumentValidator
    template: RequestTemplate
    # Its tools/list entry in wire form: the `types.Tool` it was checked as, dumped once (`_wire_entry`).
    listing: dict[str, Any]
    send_policy: SendPolicy
    shaping: ResponseShaping
    spoken: SpokenMessages = SpokenMessages()

    @property
    def name(self) -> str:
        return self.definition.mcp_name

    @property
    def timeout(self) -> float:
        return self.definition.timeout_seconds

    def progress(self, send: SendProgress | None) -> CallProgress:
        """What one call sends while it runs: heartbeats by default only for async tools."""
        definition = self.definition
        interval = definition.progress_interval_seconds
        if interval is None and definition.is_async:
            interval = DEFAULT_ASYNC_PROGRESS_SECONDS
        if interval is None and not self.spoken:
            return _SILENT  # nothing to say, ever: one shared instance, no per-call state needed
        delayed = definition.delayed_message_seconds or DEFAULT_DELAYED_MESSAGE_SECONDS
        return CallProgress(send, self.spoken, interval=interval, delayed_after=delayed)


_SILENT = CallProgress(None, SpokenMessages(), interval=None, delayed_after=DEFAULT_DELAYED_MESSAGE_SECONDS)


class Toolset:
    """Tools by MCP name, in a stable order, plus the redactor for all their secrets.

    `files` and `warnings` say what the load that built it read and warned about (shown by the
    web console; empty for a toolset built from definitions in memory).
    """

    def __init__(
        self,
        tools: Iterable[PreparedTool],
        redactor: Redactor,
        *,
        files: Iterable[str] = (),
        warnings: Iterable[ConfigProblem] = (),
        tokens: TokenCache | None = None,
        endpoints: EndpointConfig | None = None,
    ) -> None:
        self._tools = {tool.name: tool for tool in sorted(tools, key=lambda t: t.name)}
        self.redactor = redactor
        self.tokens = tokens if tokens is not None else TokenCache()  # the OAuth2 tokens its tools share
        self.files = tuple(files)
        self.warnings = tuple(warnings)
        # The tools/list answers the SDK shaped for this toolset, by protocol version (serving/server.py).
        self.shaped_lists: dict[str, dict[str, Any]] = {}
        # Whether each tool's schema mirrors an argument into an `Mcp-Param-*` header (hot_http.py),
        # worked out on first use: most mirror none, and then no header can disagree with a call.
        self.param_headers: dict[str, bool] = {}
        # The endpoints and clients loaded with these tools, swapped with them on reload.
        self.endpoints = endpoints if endpoints is not None else EndpointConfig()
        # One view per endpoint, computed once here (a call only picks its view, never filters).
        self.views: dict[str, Toolset] = {
            endpoint.name: Toolset(
                (tool for name in endpoint.tools if (tool := self._tools.get(name)) is not None),
                redactor,
                files=self.files,
                tokens=self.tokens,
            )
            for endpoint in self.endpoints.endpoints.values()
        }

    def view(self, endpoint: str | None) -> Toolset | None:
        """The tools `endpoint` serves; `None` names `/mcp`, which serves every tool unless
        `defaultEndpoint: none`. None for an endpoint that is not (or no longer) configured."""
        if endpoint is None:
            return self if self.endpoints.serves_default else None
        return self.views.get(endpoint)

    @classmethod
    def from_definitions(
        cls,
        definitions: Iterable[ToolDefinition],
        *,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        files: Iterable[str] = (),
        warnings: Iterable[ConfigProblem] = (),
        learned: LearnedSecrets | None = None,
        tokens: TokenCache | None = None,
        endpoints: EndpointConfig | None = None,
    ) -> Toolset:
        """`learned`: the secrets learned while running so far (`Redactor.learn`), to keep hiding
        across a reload; a new, empty set by default. `tokens`: the OAuth2 tokens fetched so far,
        to keep using across a reload; a new, empty cache by default."""
        definitions = list(definitions)
        endpoints = endpoints if endpoints is not None else EndpointConfig()
        client_tokens = [client.token for client in endpoints.clients.values() if client.token]
        if endpoints.oauth and endpoints.oauth.get("clientSecret"):
            client_tokens.append(endpoints.oauth["clientSecret"])  # the introspection client's secret
        secrets = [secret for d in definitions for secret in configured_secrets(d.auth_token, d.headers, d.secrets)]
        redactor = Redactor(
            [*secrets, *client_tokens],
            learned if learned is not None else LearnedSecrets(),
        )
        tokens = tokens if tokens is not None else TokenCache()
        tools = (_prepare(d, redactor, tokens, max_request_bytes) for d in definitions)
        return cls(tools, redactor, files=files, warnings=warnings, tokens=tokens, endpoints=endpoints)

    @cached_property
    def required_scopes(self) -> frozenset[str]:
        """Every OAuth scope some tool or endpoint requires (for the resource server's `scopes_supported`)."""
        tools = (scope for tool in self._tools.values() for scope in tool.definition.required_scopes)
        endpoints = (scope for endpoint in self.endpoints.endpoints.values() for scope in endpoint.required_scopes)
        return frozenset((*tools, *endpoints))

    @cached_property
    def list_wire(self) -> dict[str, Any]:
        """The tools/list result in its wire form, made of the tools' entries dumped at load: the SDK
        accepts a dict as a handler's result and would otherwise dump a whole `ListToolsResult`
        again on every tools/list (most of the server's own cost for a large toolset). The SDK
        copies it before shaping, and nothing mutates it.
        """
        wire = types.ListToolsResult(tools=[]).model_dump(**_WIRE)
        wire["tools"] = [tool.listing for tool in self._tools.values()]
        return wire

    def get(self, name: str) -> PreparedTool | None:
        return self._tools.get(name)

    def input_schema(self, name: str) -> dict[str, Any] | None:
        tool = self._tools.get(name)
        return tool.definition.params if tool else None

    def __iter__(self) -> Iterator[PreparedTool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)


_WIRE: dict[str, Any] = {"by_alias": True, "mode": "json", "exclude_none": True}


# One dumped dict per distinct set of hints (a few in all: they follow the HTTP method), shared.
_ANNOTATIONS: dict[tuple, dict[str, Any]] = {}


def _wire_entry(listing: types.Tool) -> dict[str, Any]:
    """`listing` dumped as tools/list sends it; the model is not kept (a thousand tools' models
    would be a megabyte that nothing reads again)."""
    entry = listing.model_dump(**_WIRE)
    # Where the dumped form equals what the listing holds already (plain JSON, as it almost
    # always is), share that rather than keep a second copy for the life of the toolset: the
    # schemas (most of the size), the `_meta` and the texts; the annotations are one of a few.
    for key, value in (
        ("inputSchema", listing.input_schema),
        ("outputSchema", listing.output_schema),
        ("_meta", listing.meta),
        ("name", listing.name),
        ("title", listing.title),
        ("description", listing.description),
    ):
        if key in entry and entry[key] == value:
            entry[key] = value
    if "annotations" in entry:
        entry["annotations"] = _ANNOTATIONS.setdefault(tuple(entry["annotations"].items()), entry["annotations"])
    return entry


def _auth_of(definition: ToolDefinition, tokens: TokenCache, learn: Callable[[str], None]) -> Auth | None:
    """The tool's upstream auth flow: its `auth` block or `authToken`, under `forwardCaller` when it has one."""
    own = (
        auth_from_block(definition.auth, tokens, learn)
        if definition.auth is not None
        else BearerAuth(definition.auth_token)
        if definition.auth_token
        else None
    )
    if definition.forward_caller is None:
        return own
    return ForwardCallerAuth(ForwardCaller.from_block(definition.forward_caller), own)


def _prepare(
    definition: ToolDefinition, redactor: Redactor, tokens: TokenCache, max_request_bytes: int
) -> PreparedTool:
    template = RequestTemplate.from_definition(definition, max_body_bytes=max_request_bytes)
    shaping = definition.shaping  # compiled here once, not on every call
    pairs = [(m.type, m.content) for m in definition.messages]
    meta = {
        META_TOOL: redactor.redact_json(
            {
                "method": definition.method,
                "async": definition.is_async,
                "messages": published_messages(pairs),
            }
        )
    }
    listing = types.Tool(  # checked as the SDK's model, kept as its dump
        name=definition.mcp_name,
        title=redactor(definition.name),
        description=redactor(definition.description) or None,
        # Published redacted (a secret may sit in a description or default); validation uses the original.
        # Path placeholders without a default are published as required: a call cannot go without them.
        input_schema=redactor.redact_json(definition.input_schema),
        output_schema=redactor.redact_json(shaping.output_schema),
        annotations=annotations_for(definition.method),
        _meta=meta,
    )
    return PreparedTool(
        definition=definition,
        validator=ArgumentValidator(definition.params),
        template=template,
        listing=_wire_entry(listing),
        send_policy=SendPolicy(
            timeout=definition.timeout_seconds,
            retry=definition.retry,
            follow_redirects=definition.follow_redirects,
            max_response_bytes=definition.max_response_bytes,
            auth=_auth_of(definition, tokens, redactor.learn),
            url_template=redactor(definition.url_template),
            upstream=definition.mcp_name,
        ),
        shaping=shaping,
        # Spoken aloud and sent to the client, so redacted like everything else it is shown.
        spoken=SpokenMessages.from_pairs((kind, redactor(text)) for kind, text in pairs),
    )
