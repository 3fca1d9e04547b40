"""`deskloop mcp serve`: deskloop's own tools as an MCP stdio server for other MCP hosts.

Calls go through the same dispatch as in a session (schema check, timeouts, policy). The
host asks its user before calls; deskloop cannot ask on a stdio pipe, so a risk class set
to `ask` is refused with a message naming the setting that allows it.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from typing import Any

import anyio
import mcp_types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from deskloop import __version__
from deskloop.agent.dispatch import Dispatcher, ToolCall, timeouts_from_settings
from deskloop.agent.families import load_tool_families
from deskloop.agent.policy import Answer, PermissionPolicy, PermissionRequest
from deskloop.agent.registry import ToolRegistry
from deskloop.agent.tools import RiskClass, Tool, ToolContext
from deskloop.settings import load_settings


def annotations_for(risk: RiskClass) -> mcp_types.ToolAnnotations:
    """MCP's hints for a risk class, so the host can decide what to confirm."""
    return mcp_types.ToolAnnotations(
        read_only_hint=risk == "read",
        destructive_hint=risk == "destructive",
        open_world_hint=risk == "external",
    )


def _mcp_content(block: dict[str, Any]) -> mcp_types.ContentBlock:
    if block.get("type") == "image":
        source = block["source"]
        return mcp_types.ImageContent(
            type="image", data=source["data"], mime_type=source["media_type"]
        )
    return mcp_types.TextContent(type="text", text=str(block.get("text", "")))


async def _refuse_asking(request: PermissionRequest) -> Answer:
    return Answer.DENY


def build_tool_server(
    tools: Sequence[Tool],
    policy: PermissionPolicy | None = None,
    context: ToolContext | None = None,
) -> Server:
    """A low-level MCP server whose tools/list and tools/call are deskloop's registry."""
    agent = load_settings().agent
    registry = ToolRegistry(tools)
    dispatcher = Dispatcher(
        registry,
        policy or PermissionPolicy.from_settings(agent, _refuse_asking),
        timeouts_from_settings(agent),
        context=context,
    )
    call_ids = itertools.count(1)

    async def list_tools(context: Any, params: Any) -> mcp_types.ListToolsResult:
        return mcp_types.ListToolsResult(
            tools=[
                mcp_types.Tool(
                    name=tool.name,
                    description=tool.description,
                    input_schema=tool.input_schema,
                    annotations=annotations_for(tool.risk),
                )
                for tool in registry
            ]
        )

    async def call_tool(
        context: Any, params: mcp_types.CallToolRequestParams
    ) -> mcp_types.CallToolResult:
        call = ToolCall(f"mcp_{next(call_ids)}", params.name, params.arguments or {})
        outcome = await dispatcher.run_one(call)
        return mcp_types.CallToolResult(
            content=[_mcp_content(block) for block in outcome.content],
            is_error=outcome.is_error,
        )

    return Server("deskloop", version=__version__, on_list_tools=list_tools, on_call_tool=call_tool)


async def serve_over_stdio(tools: Sequence[Tool]) -> None:
    context = ToolContext()
    server = build_tool_server(tools, context=context)
    try:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
    finally:
        await context.aclose()


def mcp_serve_command(args: argparse.Namespace) -> int:
    """Serve every built-in tool family on stdin/stdout until the host closes the pipe."""
    anyio.run(serve_over_stdio, load_tool_families())
    return 0
