"""`deskloop mcp serve`: deskloop's own tools as an MCP stdio server for other MCP hosts.

It serves the native tool set a session has, less the families that need a person
(`ask_followup`) and the loop's own `finish`. Calls go through the same dispatch as in a
session (schema check, timeouts, policy). The host asks its user before calls; deskloop
cannot ask on a stdio pipe, so a risk class set to `ask` is refused with a message naming
the setting that allows it. A tool that fails, even from a bug, answers with a result
marked `isError` and its message, as MCP hosts expect, and no traceback is printed.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import mcp_types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from deskloop import __version__
from deskloop.settings import load_settings, paths
from deskloop.store import Store
from deskloop.tools import (
    Dispatcher,
    PermissionPolicy,
    RiskClass,
    Tool,
    ToolCall,
    ToolContext,
    ToolRegistry,
    native_tool_set,
    timeouts_from_settings,
)

ToolSetBuilder = Callable[[ToolContext], Sequence[Tool]]


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


def build_tool_server(
    tools: Sequence[Tool], context: ToolContext, policy: PermissionPolicy | None = None
) -> Server:
    """A low-level MCP server whose tools/list and tools/call are deskloop's registry.

    With no policy, the user's settings decide and nobody is asked: `ask` means refused.
    """
    agent = context.settings.agent
    registry = ToolRegistry(tools)
    dispatcher = Dispatcher(
        registry,
        policy or PermissionPolicy.from_settings(agent),
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
        try:
            outcome = await dispatcher.run_one(call)
        except Exception as exc:  # a bug in a tool: still a tool result, never a traceback
            said = f"{params.name} failed unexpectedly: {type(exc).__name__}: {exc}"
            print(f"deskloop: {said}", file=sys.stderr, flush=True)
            return mcp_types.CallToolResult(
                content=[mcp_types.TextContent(type="text", text=said)], is_error=True
            )
        return mcp_types.CallToolResult(
            content=[_mcp_content(block) for block in outcome.content],
            is_error=outcome.is_error,
        )

    return Server("deskloop", version=__version__, on_list_tools=list_tools, on_call_tool=call_tool)


def served_tool_set(context: ToolContext) -> list[Tool]:
    """What `deskloop mcp serve` offers: the native set without what needs a person."""
    return native_tool_set(context, for_mcp_serve=True)


async def serve_over_stdio(build: ToolSetBuilder = served_tool_set) -> None:
    """Serve the tools `build` makes, with one context, until the host closes the pipe."""
    with Store.open() as store:
        context = ToolContext(settings=load_settings(), paths=paths(), store=store)
        server = build_tool_server(build(context), context)
        try:
            async with stdio_server() as (read_stream, write_stream):
                await server.run(
                    read_stream, write_stream, server.create_initialization_options()
                )
        finally:
            await context.aclose()


def mcp_serve_command(args: argparse.Namespace) -> int:
    """Serve the native tool set on stdin/stdout until the host closes the pipe."""
    anyio.run(serve_over_stdio)
    return 0
