"""Endpoints and clients: which tools each agent sees, and which token opens which endpoint.

A config file of ours (e.g. `config/endpoints.yaml`) holds `endpoints:`, `clients:` and
`defaultEndpoint:`; the loader recognises it beside tool definition files (`is_endpoints_document`)
and reads it with `read_endpoints_document`, which only says what is wrong as `(field, message)`
pairs, for `loading.py` to turn into its `ConfigProblem`s. Once every file is read,
`EndpointConfig.check` resolves each endpoint's names, globs and tags against the loaded tools and
checks what spans files (a client listed but not defined, a token shared by two clients).

A client's token is kept only as its SHA-256 digest for authentication (`authenticate` compares
digests in constant time), so `token` and `tokenSha256` clients are checked alike; the plain
`token` stays (never in a repr) for `hamsa register --endpoint`, which must send it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .definitions import ToolDefinition, did_you_mean
from .ratelimit import RateLimit

__all__ = [
    "DEFAULT_ENDPOINT_CHOICES",
    "ENDPOINT_KEYS",
    "OPERATOR_CLIENT",
    "Client",
    "Endpoint",
    "EndpointConfig",
    "is_endpoints_document",
    "read_endpoints_document",
    "token_digest",
]

# The top-level keys of an endpoints document.
ENDPOINT_KEYS = frozenset({"endpoints", "clients", "defaultEndpoint", "oauth"})
# `oauth:` in a file of ours: `serve --oauth-*` as config (docs/operations.md, "OAuth"); flags and
# environment win. Read at start-up: the HTTP guard is built once.
OAUTH_FIELDS = {
    "issuer": str,
    "audience": str,
    "scopes": list,
    "tokenAudiences": list,
    "introspectionUrl": str,
    "clientId": str,
    "clientSecret": str,
}
DEFAULT_ENDPOINT_CHOICES = ("all", "none")
# The client `serve --auth-token` stands for: today's single client, who may use every endpoint and `/mcp`.
OPERATOR_CLIENT = "default"
# A path segment of `/mcp/<name>`: no slash, nothing a URL must escape.
ENDPOINT_NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CLIENT_ID_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$")
SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
ENDPOINT_FIELDS = frozenset({"name", "tools", "tags", "clients", "rateLimit", "requiredScopes", "description"})
CLIENT_FIELDS = frozenset({"id", "token", "tokenSha256", "rateLimit", "description"})

Problem = tuple[str, str]  # (field, message)


def token_digest(token: str | bytes) -> bytes:
    """The SHA-256 digest a client's token is known by (what `tokenSha256` writes in hex)."""
    return hashlib.sha256(token.encode("utf-8") if isinstance(token, str) else token).digest()


@dataclass(frozen=True)
class Client:
    """One configured client: an id (shown in audit, spans and metrics) and its token's digest."""

    id: str
    digest: bytes = field(repr=False)
    token: str | None = field(default=None, repr=False)  # a secret; None for a `tokenSha256` client
    # `rateLimit` as written until the loader checks it (loading.read_rate_limit), a `RateLimit` after.
    rate_limit: RateLimit | Mapping[str, Any] | None = None
    source: str = ""

    @property
    def hashed(self) -> bool:
        """True for a `tokenSha256` client: its token is not in the config."""
        return self.token is None


@dataclass(frozen=True)
class Endpoint:
    """One endpoint, `/mcp/<name>`: the tools it serves (`tools` resolved at load) and who may use it."""

    name: str
    patterns: tuple[str, ...] = ()  # `tools:` as written: names and globs
    tags: tuple[str, ...] = ()
    clients: tuple[str, ...] = ()
    # `rateLimit` as written until the loader checks it (loading.read_rate_limit), a `RateLimit` after.
    rate_limit: RateLimit | Mapping[str, Any] | None = None
    required_scopes: tuple[str, ...] = ()  # the OAuth scopes a token needs to use it (resource_server.py)
    tools: tuple[str, ...] = ()  # the MCP names it serves, resolved by `EndpointConfig.check`
    source: str = ""

    def selects(self, definition: ToolDefinition) -> bool:
        return any(fnmatch.fnmatchcase(definition.mcp_name, p) for p in self.patterns) or bool(
            set(self.tags) & set(definition.tags)
        )


@dataclass(frozen=True)
class EndpointConfig:
    """Every endpoint and client the config defines, and what `/mcp` serves (`defaultEndpoint`)."""

    endpoints: Mapping[str, Endpoint] = field(default_factory=dict)
    clients: Mapping[str, Client] = field(default_factory=dict)
    default_endpoint: str = "all"
    default_source: str = ""  # the file that set `defaultEndpoint`, to report a second one
    # The `oauth:` block, `${...}` filled in (its clientSecret a secret), and the file it came from.
    oauth: Mapping[str, Any] | None = field(default=None, repr=False)
    oauth_source: str = ""

    @property
    def serves_default(self) -> bool:
        """Whether `/mcp` serves every tool (`defaultEndpoint: all`, the default)."""
        return self.default_endpoint == "all"

    def merged(self, other: EndpointConfig, file: str) -> tuple[EndpointConfig, list[Problem]]:
        """This config plus `other` (read from `file`); a name defined in both is a problem."""
        problems: list[Problem] = []
        endpoints, clients = dict(self.endpoints), dict(self.clients)
        for name, endpoint in other.endpoints.items():
            if name in endpoints:
                problems.append(("endpoints", f"endpoint {name!r} is also defined in {endpoints[name].source}"))
            endpoints.setdefault(name, endpoint)
        for name, client in other.clients.items():
            if name in clients:
                problems.append(("clients", f"client {name!r} is also defined in {clients[name].source}"))
            clients.setdefault(name, client)
        default, source = self.default_endpoint, self.default_source
        if other.default_source:
            if source:
                problems.append(("defaultEndpoint", f"is also set in {source}; set it in one file"))
            else:
                default, source = other.default_endpoint, other.default_source
        oauth, oauth_source = self.oauth, self.oauth_source
        if other.oauth is not None:
            if oauth is not None:
                problems.append(("oauth", f"is also set in {oauth_source}; set it in one file"))
            else:
                oauth, oauth_source = other.oauth, file
        return EndpointConfig(endpoints, clients, default, source, oauth, oauth_source), problems

    def check(
        self, definitions: Iterable[ToolDefinition]
    ) -> tuple[EndpointConfig, list[tuple[str, Problem]], list[tuple[str, Problem]]]:
        """Resolve each endpoint's tools; -> (the resolved config, errors, warnings), each `(file, problem)`."""
        definitions = list(definitions)
        errors: list[tuple[str, Problem]] = []
        warnings: list[tuple[str, Problem]] = []
        resolved: dict[str, Endpoint] = {}
        all_tags = {tag for d in definitions for tag in d.tags}
        names = [d.mcp_name for d in definitions]
        for endpoint in self.endpoints.values():
            where = f"endpoints[{endpoint.name}]"
            for i, pattern in enumerate(endpoint.patterns):
                if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
                    hint = did_you_mean(pattern, names)
                    message = f"{pattern!r} matches no tool; the endpoint serves the tools the rest selects{hint}"
                    warnings.append((endpoint.source, (f"{where}.tools[{i}]", message)))
            for i, tag in enumerate(endpoint.tags):
                if tag not in all_tags:
                    message = f"no tool carries the tag {tag!r}{did_you_mean(tag, all_tags)}"
                    warnings.append((endpoint.source, (f"{where}.tags[{i}]", message)))
            for i, client in enumerate(endpoint.clients):
                if client not in self.clients:
                    known = ", ".join(sorted(self.clients)) or "none"
                    message = f"client {client!r} is not defined under `clients:` (defined: {known}); define it there"
                    errors.append((endpoint.source, (f"{where}.clients[{i}]", message)))
            tools = tuple(sorted(d.mcp_name for d in definitions if endpoint.selects(d)))
            resolved[endpoint.name] = replace(endpoint, tools=tools)
        by_digest: dict[bytes, Client] = {}
        for client in self.clients.values():
            first = by_digest.setdefault(client.digest, client)
            if first is not client:
                message = f"has the same token as client {first.id!r}; give each client its own token"
                errors.append((client.source, (f"clients[{client.id}]", message)))
        resolved_config = replace(self, endpoints=resolved)
        return resolved_config, errors, warnings

    def authenticate(self, presented: bytes) -> Client | None:
        """The client whose token is `presented`, comparing digests in constant time (every one, always)."""
        digest = token_digest(presented)
        found: Client | None = None
        for client in self.clients.values():
            if hmac.compare_digest(digest, client.digest) and found is None:
                found = client
        return found

    def endpoints_of(self, client_id: str) -> tuple[str, ...]:
        """The endpoints `client_id` may use."""
        return tuple(e.name for e in self.endpoints.values() if client_id in e.clients)

    def endpoints_serving(self, tool: str) -> tuple[str, ...]:
        """The endpoints that serve `tool` (by MCP name)."""
        return tuple(e.name for e in self.endpoints.values() if tool in e.tools)


def is_endpoints_document(document: Any) -> bool:
    """An object whose keys include `endpoints`, `clients` or `defaultEndpoint`: a file of ours."""
    return isinstance(document, dict) and bool(ENDPOINT_KEYS & set(document))


def read_endpoints_document(
    document: dict[str, Any], file: str, substitute: Callable[[str, str], str]
) -> tuple[EndpointConfig, list[Problem], list[Problem]]:
    """The endpoints, clients and `defaultEndpoint` one file defines -> (config, errors, warnings).

    `substitute(text, field)` fills in `${...}` references (and records the values as secrets).
    Tools may share the file under `tools:`; the loader reads those.
    """
    errors: list[Problem] = []
    warnings: list[Problem] = []
    endpoints: dict[str, Endpoint] = {}
    clients: dict[str, Client] = {}
    for i, raw in enumerate(_list(document.get("endpoints"), "endpoints", errors)):
        endpoint = _endpoint(raw, f"endpoints[{i}]", file, errors, warnings)
        if endpoint is None:
            continue
        if endpoint.name in endpoints:
            errors.append((f"endpoints[{i}].name", f"endpoint {endpoint.name!r} is defined twice; keep one"))
        endpoints.setdefault(endpoint.name, endpoint)
    for i, raw in enumerate(_list(document.get("clients"), "clients", errors)):
        client = _client(raw, f"clients[{i}]", file, substitute, errors, warnings)
        if client is None:
            continue
        if client.id in clients:
            errors.append((f"clients[{i}].id", f"client {client.id!r} is defined twice; keep one"))
        clients.setdefault(client.id, client)
    default, default_source = "all", ""
    if "defaultEndpoint" in document:
        value = document["defaultEndpoint"]
        if value in DEFAULT_ENDPOINT_CHOICES:
            default, default_source = value, file
        else:
            errors.append(("defaultEndpoint", "must be `all` (/mcp serves every tool) or `none` (/mcp answers 404)"))
    oauth = _oauth(document["oauth"], substitute, errors) if "oauth" in document else None
    config = EndpointConfig(endpoints, clients, default, default_source, oauth, file if oauth is not None else "")
    return config, errors, warnings


def _oauth(raw: Any, substitute: Callable[[str, str], str], errors: list[Problem]) -> Mapping[str, Any] | None:
    """The `oauth:` block: its fields type-checked and `${...}` filled in; the rest is `serve`'s to check."""
    if not isinstance(raw, dict):
        errors.append(("oauth", "must be a mapping: {issuer: URL, audience: URL, ...}"))
        return None
    block: dict[str, Any] = {}
    for key, value in raw.items():
        kind = OAUTH_FIELDS.get(key)
        if kind is None:
            hint, known = did_you_mean(str(key), OAUTH_FIELDS), ", ".join(OAUTH_FIELDS)
            errors.append((f"oauth.{key}", f"is not a field of oauth{hint}; it takes {known}"))
        elif kind is str and (not isinstance(value, str) or not value):
            errors.append((f"oauth.{key}", "must be a non-empty string"))
        elif kind is list and not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)):
            errors.append((f"oauth.{key}", "must be a list of non-empty strings"))
        else:
            block[key] = substitute(value, f"oauth.{key}") if isinstance(value, str) else tuple(value)
    for key in ("issuer", "audience"):
        if key not in raw:
            errors.append((f"oauth.{key}", "is required (oauth needs both issuer and audience)"))
    return block


def _list(value: Any, where: str, errors: list[Problem]) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append((where, "must be a list"))
        return []
    return value


def _strings(raw: dict[str, Any], key: str, where: str, errors: list[Problem]) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        errors.append((f"{where}.{key}", "must be a list of non-empty strings"))
        return ()
    return tuple(value)


def _rate_limit(raw: dict[str, Any], where: str, errors: list[Problem]) -> Mapping[str, Any] | None:
    value = raw.get("rateLimit")
    if value is not None and not isinstance(value, dict):
        errors.append((f"{where}.rateLimit", "must be a mapping, e.g. {requests: 60, per: minute}"))
        return None
    return value


def _unknown(raw: dict[str, Any], known: frozenset[str], where: str, warnings: list[Problem]) -> None:
    for key in raw:
        if key not in known:
            warnings.append((f"{where}.{key}", "is not a known field; ignored" + did_you_mean(str(key), known)))


def _endpoint(raw: Any, where: str, file: str, errors: list[Problem], warnings: list[Problem]) -> Endpoint | None:
    if not isinstance(raw, dict):
        errors.append((where, "an endpoint must be an object with `name` and `tools` or `tags`"))
        return None
    _unknown(raw, ENDPOINT_FIELDS, where, warnings)
    name = raw.get("name")
    if not isinstance(name, str) or not ENDPOINT_NAME_RULE.match(name):
        errors.append((f"{where}.name", "must be 1-64 characters of A-Z a-z 0-9 _ . - (it is the path /mcp/<name>)"))
        return None
    where = f"endpoints[{name}]"
    patterns = _strings(raw, "tools", where, errors)
    tags = _strings(raw, "tags", where, errors)
    if "tools" not in raw and "tags" not in raw:
        errors.append((where, "selects no tools; give `tools` (names and globs) and/or `tags`"))
    return Endpoint(
        name=name,
        patterns=patterns,
        tags=tags,
        clients=_strings(raw, "clients", where, errors),
        rate_limit=_rate_limit(raw, where, errors),
        required_scopes=_strings(raw, "requiredScopes", where, errors),
        source=file,
    )


def _client(
    raw: Any,
    where: str,
    file: str,
    substitute: Callable[[str, str], str],
    errors: list[Problem],
    warnings: list[Problem],
) -> Client | None:
    if not isinstance(raw, dict):
        errors.append((where, "a client must be an object with `id` and `token` or `tokenSha256`"))
        return None
    _unknown(raw, CLIENT_FIELDS, where, warnings)
    client_id = raw.get("id")
    if not isinstance(client_id, str) or not CLIENT_ID_RULE.match(client_id):
        errors.append((f"{where}.id", "must be 1-128 characters of A-Z a-z 0-9 _ . @ : -"))
        return None
    if client_id == OPERATOR_CLIENT:
        errors.append((f"{where}.id", f"{OPERATOR_CLIENT!r} is the client of `serve --auth-token`; choose another id"))
        return None
    where = f"clients[{client_id}]"
    token, hashed = raw.get("token"), raw.get("tokenSha256")
    if token is not None and hashed is not None:
        errors.append((where, "has both `token` and `tokenSha256`; keep one"))
        return None
    if token is not None:
        if not isinstance(token, str):
            errors.append((f"{where}.token", 'must be a string, e.g. "${SALES_AGENT_TOKEN}"'))
            return None
        value = substitute(token, f"{where}.token")
        if not value:
            errors.append((f"{where}.token", 'is empty; set it (e.g. "${SALES_AGENT_TOKEN}")'))
            return None
        if value == token:
            warnings.append(
                (f"{where}.token", 'is written in the file itself; use "${NAME}", ${file:...} or `tokenSha256`')
            )
        digest, plain = token_digest(value), value
    elif hashed is not None:
        if not isinstance(hashed, str) or not SHA256_HEX.match(hashed):
            errors.append((f"{where}.tokenSha256", "must be 64 hex digits: the SHA-256 of the token"))
            return None
        digest, plain = bytes.fromhex(hashed), None
    else:
        errors.append((where, "has no `token` or `tokenSha256`; give one"))
        return None
    return Client(client_id, digest, plain, _rate_limit(raw, where, errors), source=file)
