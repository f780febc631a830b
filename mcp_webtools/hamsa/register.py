"""Hamsa's side: the body that registers this server as an MCP web tool, and sending it.

Importing tools exported from Hamsa lives in `importer.py`.

Secrets never come from the command line: the server's token and the Hamsa API key are read from
environment variables named by options, and every message passes through a `Redactor` holding
them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2

from .. import __version__
from ..auth import authorization_value
from ..definitions import url_problems
from ..egress import is_loopback_host
from ..endpoints import EndpointConfig
from ..errors import ApiRefused, ApiUnavailable, UnusableAnswer, UsageError
from ..redaction import MASK, Redactor
from .format import envelope_refused

__all__ = [
    "ApiTarget",
    "Created",
    "McpToolSpec",
    "Payload",
    "api_target",
    "build_payload",
    "endpoint_client_token",
    "endpoint_url",
    "register",
]

DEFAULT_BASE_URL = "https://api.tryhamsa.com"
BASE_URL_ENV = "HAMSA_API_URL"
DEFAULT_API_KEY_ENV = "HAMSA_API_KEY"
CREATE_PATH = "/v1/voice-agents/web-tool"
DEFAULT_TOOL_NAME = "mcp-webtools"
DEFAULT_DESCRIPTION = "HTTP tools served over MCP by mcp-webtools."
DEFAULT_TIMEOUT_SECONDS = 30
MAX_TIMEOUT_SECONDS = 3600
MAX_API_MESSAGE_CHARS = 500
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# How variable names are written by convention; another unset name may be a secret given by mistake.
CONVENTIONAL_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


# --- payload -------------------------------------------------------------------------------


@dataclass(frozen=True)
class McpToolSpec:
    server_url: str
    name: str = DEFAULT_TOOL_NAME
    description: str = DEFAULT_DESCRIPTION
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    token_env: str | None = None
    token: str | None = field(default=None, repr=False)  # an endpoint's client's token, from the config


def endpoint_url(server_url: str, endpoint: str) -> str:
    """`https://host` or `https://host/mcp` -> `https://host/mcp/<endpoint>`: where that endpoint is served."""
    base = server_url.rstrip("/")
    return f"{base}/{endpoint}" if base.endswith("/mcp") else f"{base}/mcp/{endpoint}"


def endpoint_client_token(config: EndpointConfig, endpoint: str, client_id: str | None) -> str:
    """The token of the client that will call `endpoint` (its only client, or `client_id`), from the
    config; a `UsageError` saying what to choose when there is no single answer."""
    found = config.endpoints.get(endpoint)
    if found is None:
        defined = ", ".join(sorted(config.endpoints)) or "none (add endpoints: to a config file)"
        raise UsageError(f"--endpoint {endpoint}: no such endpoint in the config; defined: {defined}")
    if client_id is None:
        if len(found.clients) != 1:
            listed = ", ".join(found.clients) or "none"
            raise UsageError(
                f"endpoint {endpoint!r} has {len(found.clients) or 'no'} clients ({listed}): choose one with "
                "--client ID, or give the token with --token-env NAME"
            )
        client_id = found.clients[0]
    elif client_id not in found.clients:
        listed = ", ".join(found.clients) or "none"
        raise UsageError(f"--client {client_id}: endpoint {endpoint!r} does not list it (clients: {listed})")
    client = config.clients.get(client_id)
    if client is None or client.token is None:
        raise UsageError(
            f"client {client_id!r} has only a tokenSha256 in the config: give its token with --token-env NAME"
        )
    return client.token


@dataclass(frozen=True)
class Payload:
    body: dict[str, Any]
    secrets: tuple[str, ...] = ()  # values to hide from every message
    notes: tuple[str, ...] = ()


def build_payload(spec: McpToolSpec, environ: Mapping[str, str], *, redact: bool = False) -> Payload:
    """The create-web-tool body for an MCP-type tool. No `params`/`async`: the API refuses them for MCP."""
    check_url(spec.server_url, "--url")
    if not 1 <= len(spec.name) <= 250:
        raise UsageError("--name must be 1 to 250 characters")
    if not 1 <= len(spec.description) <= 1000:
        raise UsageError("--description must be 1 to 1000 characters")
    if not 1 <= spec.timeout_seconds <= MAX_TIMEOUT_SECONDS:
        raise UsageError(f"--timeout must be 1 to {MAX_TIMEOUT_SECONDS} seconds")
    settings: dict[str, Any] = {"serverUrl": spec.server_url}
    secrets: list[str] = []
    notes: list[str] = []
    if spec.token_env is None and spec.token is None:
        notes.append("no --token-env: the tool is registered without auth; the server must not require a token")
    else:
        token = read_secret(environ, spec.token_env, "--token-env") if spec.token_env else spec.token or ""
        # Our server takes `Bearer <token>` (or `Token <token>`); Hamsa sends authToken as the header value.
        value = authorization_value(token)
        secrets += [token, value]
        settings["authToken"] = MASK if redact else value
    settings["timeOut"] = spec.timeout_seconds
    body = {"type": "MCP", "name": spec.name, "description": spec.description, "toolSettings": settings}
    return Payload(body, tuple(secrets), tuple(notes))


def check_url(url: str, option: str) -> str:
    """An absolute https:// URL, or http:// to a loopback host; no credentials, query-safe. Never echoed."""
    problems = url_problems(url)
    problem = next((kind for kind in _URL_MESSAGES if kind in problems), None)  # the first in our order
    if problem is not None:
        raise UsageError(f"{option} {_URL_MESSAGES[problem]}")
    parts = urlsplit(url)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
        raise UsageError(f"{option} must use https:// (plain http:// is allowed only to localhost/127.0.0.1/::1)")
    return url


# `url_problems`' kinds said about a command-line option, in the order they are reported.
_URL_MESSAGES = {
    "control": "must not contain spaces or control characters",
    "not-absolute": "must be an absolute https:// URL",
    "credentials": "must not contain user:password@",
    "fragment": "must not contain a #fragment",
    "port": "has an invalid port",
}


def read_secret(environ: Mapping[str, str], name: str, option: str) -> str:
    """The value of the environment variable `name`. A `name` that may be a secret is never echoed.

    `--token-env "$MCP_WEBTOOLS_AUTH_TOKEN"` passes the token itself: it is named back only when
    it looks like an environment variable's name (capitals, digits, _) and is no variable's value.
    """
    if not ENV_NAME.match(name):
        raise UsageError(f"{option} takes the NAME of an environment variable (letters, digits, _), not a value")
    value = environ.get(name, "")
    if not value.strip():
        holders = sorted(var for var, held in environ.items() if held.strip() and held.strip() == name)
        if holders:
            raise UsageError(
                f"{option} takes the NAME of an environment variable, not its value: "
                f"pass {option} {holders[0]} (without the $)"
            )
        if not CONVENTIONAL_ENV_NAME.match(name):
            raise UsageError(
                f"{option} takes the NAME of an environment variable (capitals, digits, _), and no variable "
                "of the name given is set (not shown here, in case it is a value)"
            )
        raise UsageError(f"environment variable {name} ({option}) is not set or empty")
    if not value.isascii() or any(ch in value for ch in "\r\n\0"):
        raise UsageError(f"environment variable {name} ({option}) holds non-ASCII or CR/LF/NUL characters")
    return value.strip()


# --- register ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiTarget:
    base_url: str
    api_key: str = field(repr=False)
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class Created:
    id: str
    name: str | None


def api_target(
    base_url: str | None, api_key_env: str, environ: Mapping[str, str], timeout_seconds: float = 30.0
) -> ApiTarget:
    base = (base_url or environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    check_url(base, "--base-url")  # the API key goes there: never over plain http to another host
    if urlsplit(base).query:
        raise UsageError("--base-url must not contain a ?query")
    if not timeout_seconds > 0:
        raise UsageError("--api-timeout must be greater than 0")
    return ApiTarget(base, read_secret(environ, api_key_env, "--api-key-env"), timeout_seconds)


async def register(payload: Payload, target: ApiTarget) -> Created:
    """POST the body to the Hamsa API; the created tool, or a `HamsaError` naming what went wrong."""
    redact = Redactor([target.api_key, *payload.secrets])
    key = target.api_key
    headers = {
        "Authorization": key if key.lower().startswith("token ") else f"Token {key}",
        "Accept": "application/json",
        "User-Agent": f"mcp-webtools/{__version__}",
    }
    where = urlsplit(target.base_url).netloc
    maybe = "the tool may have been created anyway: check the Hamsa dashboard before registering again"
    # Redirects are not followed: the API key would go along to wherever they point.
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(target.timeout_seconds), follow_redirects=False) as client:
        try:
            response = await client.post(target.base_url + CREATE_PATH, json=payload.body, headers=headers)
        except httpx2.ConnectTimeout:
            raise ApiUnavailable(f"could not connect to {where} within {target.timeout_seconds:g} s") from None
        except httpx2.TimeoutException:
            raise ApiUnavailable(
                f"no answer from {where} within {target.timeout_seconds:g} s (--api-timeout); {maybe}"
            ) from None
        except httpx2.ConnectError as exc:
            raise ApiUnavailable(redact(f"could not connect to {where}: {exc}")) from None
        except httpx2.HTTPError as exc:
            message = f"the connection to {where} failed before an answer ({exc}); {maybe}"
            raise ApiUnavailable(redact(message)) from None
    return _created(response, redact, maybe)


def _created(response: httpx2.Response, redact: Redactor, maybe: str) -> Created:
    status = response.status_code
    said = redact(_api_message(response))
    if status in (401, 403):
        raise ApiRefused(f"the Hamsa API refused the API key (HTTP {status}){said}; check --api-key-env")
    if 300 <= status < 400:
        raise ApiRefused(f"the Hamsa API answered with a redirect (HTTP {status}); not followed: check --base-url")
    if status == 429 or status >= 500:
        raise ApiUnavailable(f"the Hamsa API failed (HTTP {status}){said}; try again later")
    if status >= 400:
        raise ApiRefused(f"the Hamsa API rejected the tool (HTTP {status}){said}")
    try:
        envelope = json.loads(response.content)
    except ValueError:
        raise UnusableAnswer(f"the Hamsa API answered HTTP {status} with a body that is not JSON; {maybe}") from None
    data = envelope.get("data") if isinstance(envelope, dict) else None
    tool_id = data.get("id") if isinstance(data, dict) else None
    if isinstance(envelope, dict) and envelope_refused(envelope):
        found = f" (the answer names tool id {tool_id})" if isinstance(tool_id, str) else ""
        raise UnusableAnswer(redact(f"the Hamsa API answered success: false{said}{found}; {maybe}"))
    if not isinstance(tool_id, str) or not tool_id:
        raise UnusableAnswer(f"the Hamsa API answered HTTP {status} without data.id; {maybe}")
    name = data.get("name")
    return Created(tool_id, name if isinstance(name, str) else None)


def _api_message(response: httpx2.Response) -> str:
    """`: <what the API said>`, shortened, or ``."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts = [body.get("message"), body.get("error")]
        texts: list[str] = []
        for part in parts:
            items = part if isinstance(part, list) else [part]
            texts += [str(item) for item in items if isinstance(item, (str, int, float)) and str(item) not in texts]
        text = "; ".join(texts)
    elif "html" in response.headers.get("content-type", ""):
        text = "an HTML page"
    else:
        text = " ".join(response.text.split())
    if len(text) > MAX_API_MESSAGE_CHARS:
        text = text[: MAX_API_MESSAGE_CHARS - 3] + "..."
    return f": {text}" if text else ""
