from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support import Upstream, serve_asgi


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    """A recording HTTP API on 127.0.0.1; `upstream.url` is its base URL."""
    app = Upstream()
    async with serve_asgi(app) as url:
        app.url = url
        yield app
