"""The command line: argument parsing and printing; `main` is the `mcp-webtools` entry point."""

from .commands import main

__all__ = ["main"]
