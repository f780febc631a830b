"""mcp-webtools: serve configured HTTP web tools (Hamsa's FUNCTION tools) as MCP tools.

The public surface is `__all__`: what the command line itself is built from, for running the
server from Python, plus the errors.

    import mcp_webtools

    webtools = mcp_webtools.open_webtools(["config/"], options=mcp_webtools.ServerOptions(max_concurrency=16))
    await mcp_webtools.serve_stdio(webtools)  # or serve_http(webtools, host, port, HttpSettings())
    app = mcp_webtools.build_http_app(webtools, mcp_webtools.HttpSettings())  # an ASGI app to mount

- running: `open_webtools` (config paths -> a ready `WebTools`), `ServerOptions`, `EgressPolicy`,
  `serve_stdio`, `serve_http`, `build_http_app` with its `HttpSettings`;
- the parts: `load_definitions` (files -> `ToolDefinition`s in a `LoadResult`, or `ConfigErrors`
  listing each `ConfigProblem`), `load_toolset` (-> a `Toolset`), `WebTools` (answers MCP calls);
- the errors: `WebToolsError` and the tree under it (see `mcp_webtools.errors`).

Modules not reached from here are internal and may change in any release.

The errors come with the package (errors.py imports nothing); every other name is imported on
first use. So `import mcp_webtools` costs well under a millisecond and about 11 MB resident, where
the server's own imports (the MCP SDK, httpx, starlette, pydantic) take about a second and 70 MB.
"""

from __future__ import annotations

from . import errors
from .errors import *  # noqa: F403 - the whole tree is public (errors.__all__), and errors.py imports nothing

__version__ = "0.1.0"

# Public names that cost an import, by the module (under this package) that defines each one.
_LAZY = {
    "open_webtools": "serving.runtime",
    "load_toolset": "serving.runtime",
    "serve_stdio": "serving.runtime",
    "serve_http": "serving.runtime",
    "ServerOptions": "serving.runtime",
    "build_http_app": "serving.http_app",
    "HttpSettings": "serving.http_app",
    "WebTools": "serving.server",
    "Toolset": "toolset",
    "ToolDefinition": "definitions",
    "load_definitions": "loading",
    "LoadResult": "loading",
    "ConfigProblem": "loading",
    "EgressPolicy": "egress",
}

__all__ = ["__version__", *_LAZY, *errors.__all__]


def __getattr__(name: str) -> object:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # looked up here once; later uses find it without this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
