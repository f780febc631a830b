"""Every exception mcp-webtools raises on purpose, in one tree (as httpx keeps its own in `_exceptions.py`).

WebToolsError                   the root: `except WebToolsError` catches every one of them, and nothing else
├── ConfigErrors                the configuration cannot be served; `.errors` lists every problem found
├── DefinitionError             part of one tool definition cannot be read (the loader lists it in ConfigErrors)
│   ├── ShapeError              an entry is no shape we read; `.field` says where
│   ├── PathError               a `responseFields` entry is not a path
│   └── SchemaProblems          `params` is no valid JSON Schema; `.problems` (also a ValueError)
├── EgressDenied                the egress policy refuses a destination (at connect time: an UpstreamError)
├── InvalidArguments            the call's arguments cannot make a request; nothing was sent
│   ├── ArgumentError           they do not satisfy the tool's inputSchema; `.problems`
│   └── RequestBuildError       one cannot be placed in the request; `.field`
├── CallRefused                 the server takes no new call right now; try again shortly
│   ├── Busy                    every slot is taken and the wait queue is full
│   ├── ShuttingDown            the server is draining
│   └── RateLimited             a rate limit or an upstream's 429 pause refuses the call
├── SendError                   the request got no HTTP answer; `.attempts`, `.transient`, `.maybe_received`
│   ├── RequestNotSent          the HTTP client could not build or send it: nothing reached the upstream
│   └── UpstreamError           the upstream gave no HTTP answer
│       ├── UpstreamTimeout         not in time (transient; it may have been received)
│       ├── UpstreamUnreachable     no connection (transient; it was not received)
│       ├── UpstreamConnectionLost  broken mid-exchange (transient; it may have been received)
│       └── TokenEndpointError      no access token for the upstream: the OAuth2 token endpoint failed
├── OutputMismatch              the shaped answer does not match the tool's outputSchema
├── ListenError                 a port or address cannot be listened on; the message names the option to change
├── Refusal                     an inbound message is no JSON-RPC request we handle; `.code`, `.message`, `.id`
├── IdentityProviderUnavailable the OAuth authorization server cannot be asked (discovery, JWKS, introspection)
├── ImportRefused               `import openapi` wrote nothing; the message says why
└── HamsaError                  a `hamsa` command failed; the message is the whole story for the user
    ├── UsageError              a bad option or a missing environment variable: nothing sent or written
    ├── ApiRefused              4xx or a redirect: retrying as is will not help
    ├── ApiUnavailable          timeout, connection failure, 429 or 5xx: worth trying again later
    └── UnusableAnswer          a 2xx without the expected envelope: the tool may have been created

The call-time errors (`InvalidArguments`, `CallRefused`, `SendError`, `OutputMismatch`) are
written for the model, which reads them in a tool error (after the `Redactor`): they name the
argument or say what happened and what to do. Configuration errors name the file, the tool and the
field. Exit codes are the command line's business (`hamsa/cli.py`), not the errors'.

Every module imports this one, and `import mcp_webtools` imports it too, so it imports nothing
at run time: no part of the package (no cycles), not even `typing`.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only
    from collections.abc import Sequence

    from .loading import ConfigProblem

__all__ = [
    "ApiRefused",
    "ApiUnavailable",
    "ArgumentError",
    "Busy",
    "CallRefused",
    "ConfigErrors",
    "DefinitionError",
    "EgressDenied",
    "HamsaError",
    "IdentityProviderUnavailable",
    "ImportRefused",
    "InvalidArguments",
    "ListenError",
    "OutputMismatch",
    "PathError",
    "RateLimited",
    "RequestBuildError",
    "Refusal",
    "RequestNotSent",
    "SchemaProblems",
    "SendError",
    "ShapeError",
    "ShuttingDown",
    "TokenEndpointError",
    "UnusableAnswer",
    "UpstreamConnectionLost",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamUnreachable",
    "UsageError",
    "WebToolsError",
]


class WebToolsError(Exception):
    """The root of every exception mcp-webtools raises on purpose."""


# --- configuration ---------------------------------------------------------------------------


class ConfigErrors(WebToolsError):
    """Every problem found while loading; start-up stops and lists them all."""

    def __init__(self, errors: Sequence[ConfigProblem]) -> None:
        self.errors = list(errors)
        super().__init__(self.describe())

    def describe(self) -> str:
        count = len(self.errors)
        lines = [f"{count} config error{'s' if count != 1 else ''}:"]
        lines += [f"  - {error}" for error in self.errors]
        return "\n".join(lines)


class DefinitionError(WebToolsError):
    """One part of one tool definition cannot be read; the loader reports it as a `ConfigProblem`."""


class SchemaProblems(DefinitionError, ValueError):
    """`params` is not a valid JSON Schema: every problem, as `(path in the schema, message)` pairs.

    Also a `ValueError`, because it is raised inside a pydantic validator, which reports only those.
    """

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        self.problems = problems
        where = "; ".join(f"at {'/'.join(map(str, path))}: {text}" if path else text for path, text in problems)
        super().__init__(f"is not a valid JSON Schema: {where}")


class ListenError(WebToolsError):
    """A port or address that cannot be listened on; the message says which option to change."""


class Refusal(WebToolsError):
    """An inbound message the server answers with a JSON-RPC error (`code`, `message`) instead of handling.

    `id` is the request's id when one could be read, else None (sent as `"id": null`). The answer
    itself is built by `serving/jsonrpc_input.py`.
    """

    def __init__(self, code: int, message: str, id: str | int | None = None) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.id = id


class IdentityProviderUnavailable(WebToolsError):
    """The OAuth authorization server could not be asked (network, status, not JSON): the resource
    server answers 503, not 401, since the client's token may be fine (serving/resource_server.py)."""


class ShapeError(DefinitionError):
    """A tool entry is not any shape we understand; `field` is the user's field path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class PathError(DefinitionError):
    """A `responseFields` entry is not a path."""


class EgressDenied(WebToolsError):
    """The policy refuses this destination. The message names the host, never a path or query."""


# --- one call: nothing sent ------------------------------------------------------------------


class InvalidArguments(WebToolsError):
    """The call's arguments cannot make a request, so nothing was sent."""


class ArgumentError(InvalidArguments):
    """The arguments do not satisfy the schema; `problems` is a list of (field, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems))


class RequestBuildError(InvalidArguments):
    """An argument cannot be placed in the request; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class CallRefused(WebToolsError):
    """The server takes no new call right now; the message is safe to show the model."""


class Busy(CallRefused):
    """Too many calls are already waiting; the message is safe to show the model."""


class ShuttingDown(CallRefused):
    """The server is draining and takes no new calls; the message is safe to show the model."""


class RateLimited(CallRefused):
    """A rate limit, or a pause the upstream asked for (429), refuses the call; nothing was sent.

    `limit` says which ("tool 'x'", "client 'ide'", "the upstream of tool 'x'"), `retry_after` in
    how many seconds a call may succeed; the message is safe to show the model.
    """

    def __init__(self, message: str, *, limit: str, retry_after: float) -> None:
        super().__init__(message)
        self.limit = limit
        self.retry_after = retry_after


# --- one call: the send ----------------------------------------------------------------------


class SendError(WebToolsError):
    """The prepared request got no HTTP answer. The message is safe to show the model."""

    transient = False  # worth another attempt, if the retry policy allows one
    maybe_received = False  # the request may have reached the upstream and taken effect

    def __init__(self, message: str, *, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts


class RequestNotSent(SendError):
    """The HTTP client could not build or send the request, so nothing reached the upstream."""


class UpstreamError(SendError):
    """The upstream could not give an HTTP answer."""


class UpstreamTimeout(UpstreamError):
    transient = True
    maybe_received = True


class UpstreamUnreachable(UpstreamError):
    transient = True


class UpstreamConnectionLost(UpstreamError):
    """The connection broke after it was made (reset mid-body, closed early)."""

    transient = True
    maybe_received = True


class TokenEndpointError(UpstreamError):
    """The tool's OAuth2 token endpoint gave no usable access token, so the API was not called.

    The message names the token URL and the OAuth error code (never a client credential): the
    call's `isError` text, and the `auth_error` outcome in the audit record and the metrics.
    """


class OutputMismatch(WebToolsError):
    """The shaped result does not match the tool's `outputSchema`; `str()` says why, for the model."""


class ImportRefused(WebToolsError):
    """`import openapi` wrote nothing: the document cannot be read, nothing is selected, or files exist."""


# --- the `hamsa` commands --------------------------------------------------------------------


class HamsaError(WebToolsError):
    """A `hamsa` command failed; the message tells the user all they need (exit codes: hamsa/cli.py)."""


class UsageError(HamsaError):
    """A bad option or a missing environment variable: nothing was sent or written."""


class ApiRefused(HamsaError):
    """The API answered 4xx (or a redirect): fix the key or the payload; retrying as is will not help."""


class ApiUnavailable(HamsaError):
    """No usable answer: timeout, connection failure, 429 or 5xx. Worth trying again later."""


class UnusableAnswer(HamsaError):
    """A 2xx whose body is not the expected envelope; the tool may have been created."""
