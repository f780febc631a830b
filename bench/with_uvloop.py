"""Run a module (`python bench/with_uvloop.py mcp_webtools serve ...`) on uvloop's event loop.

anyio's asyncio backend creates its loop through the event loop policy, so setting uvloop's
policy first is enough; nothing in mcp-webtools changes.
"""

import asyncio
import runpy
import sys

import uvloop

asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
module = sys.argv.pop(1)
sys.argv[0] = module
runpy.run_module(module, run_name="__main__", alter_sys=True)
