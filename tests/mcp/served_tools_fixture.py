"""A test fixture: deskloop's MCP server over stdio, serving two fake tools (named as such)."""

from typing import Any

import anyio

from deskloop.mcp.server import serve_over_stdio
from deskloop.tools import TimeoutTier, Tool, ToolContext, ToolOutput


async def shout(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
    return str(tool_input["text"]).upper()


async def wipe(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
    return "wiped"


async def crash(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
    raise RuntimeError(f"fake bug while handling {tool_input['text']!r}")


TEXT = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
FAKE_TOOLS = [
    Tool("fake_shout", "Upper-case the text.", TEXT, "read", TimeoutTier.INTERNAL, shout),
    Tool("fake_wipe", "Erase everything.", TEXT, "destructive", TimeoutTier.INTERNAL, wipe),
    Tool("fake_crash", "A tool with a bug.", TEXT, "read", TimeoutTier.INTERNAL, crash),
]


def fake_tool_set(context: ToolContext) -> list[Tool]:
    return list(FAKE_TOOLS)


if __name__ == "__main__":
    anyio.run(serve_over_stdio, fake_tool_set)
