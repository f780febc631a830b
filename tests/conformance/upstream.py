"""The fixture upstream behind the conformance tools (`tools.yaml`): one small HTTP API.

The conformance suite expects the "everything server" tools (`test_simple_text`, ...); our
server only turns HTTP endpoints into tools, so each of those tools is an endpoint here:

    GET  /text   text/plain                        test_simple_text
    GET  /image  a 1x1 red PNG                     test_image_content
    GET  /audio  a 10 ms silent WAV                test_audio_content
    GET  /error  HTTP 500 with a message           test_error_handling
    GET  /slow   answers after SLOW_SECONDS        test_tool_with_logging, test_tool_with_progress
    POST /echo   the JSON body back                json_schema_2020_12_tool
"""

from __future__ import annotations

import base64
import io
import json
import wave

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = ["PNG", "SIMPLE_TEXT", "SLOW_SECONDS", "WAV", "app"]

SIMPLE_TEXT = "This is a simple text response for testing."
ERROR_TEXT = "This tool intentionally returns an error for testing"
# Long enough for the tools' progress heartbeats (every 0.1 s) and delayed message (0.1 s) to fire.
SLOW_SECONDS = 0.6
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC")


def _silent_wav(seconds: float = 0.01, rate: int = 8000) -> bytes:
    """The "minimal test audio file" the suite asks for: mono, 16-bit, silence."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\x00\x00" * int(seconds * rate))
    return out.getvalue()


WAV = _silent_wav()


async def text(request: Request) -> Response:
    return PlainTextResponse(SIMPLE_TEXT)


async def image(request: Request) -> Response:
    return Response(PNG, media_type="image/png")


async def audio(request: Request) -> Response:
    return Response(WAV, media_type="audio/wav")


async def error(request: Request) -> Response:
    return PlainTextResponse(ERROR_TEXT, status_code=500)


async def slow(request: Request) -> Response:
    await anyio.sleep(SLOW_SECONDS)
    return JSONResponse({"done": True, "waitedSeconds": SLOW_SECONDS})


async def echo(request: Request) -> Response:
    return JSONResponse({"received": json.loads(await request.body() or b"{}")})


app = Starlette(
    routes=[
        Route("/text", text),
        Route("/image", image),
        Route("/audio", audio),
        Route("/error", error),
        Route("/slow", slow),
        Route("/echo", echo, methods=["POST"]),
    ]
)
