"""Client connections to MCP servers, and their tools offered as `mcp__<server>__<tool>`.

Each server runs for the length of one agent session. Its connection lives in a task of its
own (the SDK's transports must be entered and left in one task); calls come from any task.
A server that crashes is restarted once and reported; a second crash stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any, Literal

import anyio
import httpx2
import mcp_types
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from deskloop.errors import DeskloopError
from deskloop.mcp.config import HttpServerConfig, McpServerConfig, StdioServerConfig
from deskloop.tools import (
    BadToolArguments,
    ContentBlock,
    RiskClass,
    TimeoutTier,
    Tool,
    ToolContext,
    ToolFailed,
    ToolOutput,
)

StderrSink = Callable[[str, str], None]
ReportSink = Callable[[str, str], None]
ServerState = Literal["stopped", "running", "failed"]

# Start-up budget for a server (spawn, handshake, tools/list); npx-style servers can be slow.
START_TIMEOUT_S = 60.0
# HTTP: the SDK's own defaults (mcp.shared._httpx_utils): 30 s to connect, 300 s to read.
HTTP_TIMEOUT = httpx2.Timeout(30.0, read=300.0)
_CONNECTION_LOST = (
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
    anyio.EndOfStream,
    httpx2.TransportError,
    ConnectionError,
)


class McpStartError(DeskloopError):
    """An MCP server that did not start; the message says which and what to check."""


class _ServerCrashed(Exception):
    """The connection to a server ended under a call."""


def mcp_tool_name(server: str, tool: str) -> str:
    """`mcp__<server>__<tool>`, made of the characters and length the Messages API allows."""
    name = "mcp__" + re.sub(r"[^A-Za-z0-9_-]", "_", server) + "__"
    name += re.sub(r"[^A-Za-z0-9_-]", "_", tool)
    if len(name) > 64:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = name[:55] + "_" + digest
    return name


def risk_of(tool: mcp_types.Tool) -> RiskClass:
    """The risk class from the annotations; an unannotated third-party tool counts as external."""
    hints = tool.annotations
    if hints is None:
        return "external"
    if hints.read_only_hint:
        return "read"
    if hints.destructive_hint:
        return "destructive"
    if hints.open_world_hint is False:
        return "act"
    return "external"


def content_blocks(result: mcp_types.CallToolResult) -> list[ContentBlock]:
    """An MCP tool result as Anthropic `tool_result` content blocks."""
    blocks: list[ContentBlock] = []
    for item in result.content:
        if isinstance(item, mcp_types.TextContent):
            blocks.append({"type": "text", "text": item.text})
        elif isinstance(item, mcp_types.ImageContent):
            blocks.append(
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": item.mime_type, "data": item.data},
                }
            )
        elif isinstance(item, mcp_types.EmbeddedResource):
            resource = item.resource
            if isinstance(resource, mcp_types.TextResourceContents):
                blocks.append({"type": "text", "text": f"{resource.uri}:\n{resource.text}"})
            else:
                blocks.append({"type": "text", "text": f"[binary resource {resource.uri}]"})
        elif isinstance(item, mcp_types.ResourceLink):
            blocks.append({"type": "text", "text": f"[resource {item.name}: {item.uri}]"})
        else:
            blocks.append({"type": "text", "text": f"[{item.type} content omitted]"})
    if not blocks and result.structured_content is not None:
        blocks.append({"type": "text", "text": json.dumps(result.structured_content)})
    return blocks


class McpServerConnection:
    """One MCP server for one session: start, list tools, call, restart once, stop."""

    def __init__(
        self,
        config: McpServerConfig,
        *,
        on_stderr: StderrSink,
        on_report: ReportSink,
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        self.config = config
        self.start_timeout_s = start_timeout_s
        self.name = config.name
        self.state: ServerState = "stopped"
        self.tools: list[mcp_types.Tool] = []
        self.restarts_left = 1
        self._on_stderr = on_stderr
        self._on_report = on_report
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._generation = 0
        self._restart_lock = asyncio.Lock()

    async def start(self) -> list[mcp_types.Tool]:
        """Connect and list the server's tools; raises McpStartError when it cannot."""
        ready: asyncio.Future[list[mcp_types.Tool]] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._hold_connection(ready), name=f"mcp:{self.name}")
        try:
            async with asyncio.timeout(self.start_timeout_s):
                self.tools = await asyncio.shield(ready)
        except TimeoutError:
            await self.stop()
            raise McpStartError(
                f"MCP server {self.name!r} did not answer within {self.start_timeout_s:g} s; "
                "check its command in `deskloop mcp list` and its lines in the session log"
            ) from None
        except McpStartError:
            await self.stop()
            raise
        self.state = "running"
        self._generation += 1
        return self.tools

    async def stop(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            if self._client is None:
                task.cancel()  # still starting: nothing would ever read the stop event
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._client = None
        if self.state == "running":
            self.state = "stopped"

    async def call(self, tool_name: str, arguments: dict[str, Any]) -> list[ContentBlock]:
        """Call one tool; a failure the model can act on is raised as a ToolError."""
        if self.state != "running" or self._client is None:
            raise ToolFailed(
                f"MCP server {self.name!r} is {self.state} for the rest of this session"
            )
        generation = self._generation
        try:
            result = await self._client.call_tool(tool_name, arguments)
        except MCPError as exc:
            if exc.error.code == mcp_types.CONNECTION_CLOSED:
                await self._after_crash(generation)
            if exc.error.code == mcp_types.INVALID_PARAMS:
                raise BadToolArguments(exc.error.message) from exc
            raise ToolFailed(f"MCP server {self.name!r} answered: {exc.error.message}") from exc
        except _CONNECTION_LOST as exc:
            await self._after_crash(generation)
            raise ToolFailed(f"lost the connection to MCP server {self.name!r}") from exc
        blocks = content_blocks(result)
        if result.is_error:
            said = " ".join(str(b.get("text", "")) for b in blocks) or "no details given"
            raise ToolFailed(said)
        return blocks

    async def _after_crash(self, generation: int) -> None:
        async with self._restart_lock:
            if generation != self._generation or self.state != "running":
                raise ToolFailed(f"MCP server {self.name!r} stopped during the call")
            await self.stop()
            if self.restarts_left <= 0:
                self.state = "failed"
                self._on_report(self.name, "crashed again; stopped for the rest of this session")
                raise ToolFailed(
                    f"MCP server {self.name!r} crashed again and is stopped for this session"
                )
            self.restarts_left -= 1
            try:
                await self.start()
            except McpStartError as exc:
                self.state = "failed"
                self._on_report(self.name, f"crashed and did not restart: {exc}")
                raise ToolFailed(f"MCP server {self.name!r} crashed and did not restart") from exc
            self._on_report(self.name, "crashed and was restarted")
        raise ToolFailed(
            f"MCP server {self.name!r} crashed during the call and was restarted; "
            "the call did not complete, check its effect before trying again"
        )

    async def _hold_connection(self, ready: asyncio.Future[list[mcp_types.Tool]]) -> None:
        """Enter the transport, list tools, and stay connected until `stop()`."""
        try:
            async with AsyncExitStack() as stack:
                client = await self._connect(stack)
                tools = await _list_all_tools(client)
                self._client = client
                ready.set_result(tools)
                await self._stop.wait()
        except Exception as exc:
            if not ready.done():
                ready.set_exception(
                    McpStartError(f"MCP server {self.name!r} did not start: {_describe(exc)}")
                )
            else:
                self._on_report(self.name, f"connection ended: {_describe(exc)}")
        finally:
            self._client = None

    async def _connect(self, stack: AsyncExitStack) -> Client:
        config = self.config
        if isinstance(config, StdioServerConfig):
            errlog = await self._relay_stderr(stack)
            parameters = StdioServerParameters(
                command=config.command, args=config.args, env=config.env or None, cwd=config.cwd
            )
            transport = stdio_client(parameters, errlog=errlog)
            client = await stack.enter_async_context(Client(transport))
            errlog.close()  # the child holds its copy; ours would keep the pipe from ending
            return client
        http = await stack.enter_async_context(
            httpx2.AsyncClient(headers=config.headers, timeout=HTTP_TIMEOUT)
        )
        return await stack.enter_async_context(
            Client(streamable_http_client(config.url, http_client=http))
        )

    async def _relay_stderr(self, stack: AsyncExitStack) -> Any:
        """A pipe for the server's stderr whose lines go to the session log, one by one."""
        read_fd, write_fd = os.pipe()
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb")
        )

        async def forward() -> None:
            while line := await reader.readline():
                self._on_stderr(self.name, line.decode(errors="replace").rstrip("\n"))

        relay = asyncio.create_task(forward())

        async def finish() -> None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await asyncio.shield(relay)
            relay.cancel()
            transport.close()

        stack.push_async_callback(finish)
        errlog = os.fdopen(write_fd, "w")
        stack.callback(errlog.close)
        return errlog


async def _list_all_tools(client: Client) -> list[mcp_types.Tool]:
    tools: list[mcp_types.Tool] = []
    cursor: str | None = None
    for _ in range(100):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in exc.exceptions)
    if isinstance(exc, FileNotFoundError):
        return f"command not found ({exc.filename}); check `command` in the servers file"
    return str(exc) or type(exc).__name__


def connection_tools(connection: McpServerConnection) -> list[Tool]:
    """The server's tools as registry entries named `mcp__<server>__<tool>`."""

    def runner(remote_name: str) -> Callable[[dict[str, Any], ToolContext], Any]:
        async def run(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
            return await connection.call(remote_name, tool_input)

        return run

    tools = []
    for remote in connection.tools:
        schema = dict(remote.input_schema) if remote.input_schema else {}
        schema.setdefault("type", "object")
        tools.append(
            Tool(
                name=mcp_tool_name(connection.name, remote.name),
                description=remote.description or remote.title or remote.name,
                input_schema=schema,
                risk=risk_of(remote),
                timeout_tier=TimeoutTier.MCP,
                run=runner(remote.name),
                source=f"mcp:{connection.name}",
                # Another program's output: data for the model, never instructions.
                untrusted=True,
            )
        )
    return tools


def _print_report(server: str, message: str) -> None:
    print(f"deskloop: MCP server {server!r} {message}", flush=True)


class McpServers:
    """The MCP servers of one session: started together, tools registered, stopped together."""

    def __init__(
        self,
        configs: Sequence[McpServerConfig],
        *,
        on_stderr: StderrSink,
        on_report: ReportSink = _print_report,
        switched_off: Sequence[str] = (),
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        self.connections = [
            McpServerConnection(
                config, on_stderr=on_stderr, on_report=on_report, start_timeout_s=start_timeout_s
            )
            for config in configs
            if config.enabled and config.name not in switched_off
        ]
        self._on_report = on_report

    async def start(self) -> list[Tool]:
        """Start every server at once; one that fails is reported and left out."""
        results = await asyncio.gather(
            *(connection.start() for connection in self.connections), return_exceptions=True
        )
        tools: list[Tool] = []
        for connection, result in zip(self.connections, results, strict=True):
            if isinstance(result, McpStartError):
                connection.state = "failed"
                self._on_report(connection.name, f"left out of this session: {result}")
            elif isinstance(result, BaseException):
                raise result
            else:
                tools.extend(connection_tools(connection))
        return tools

    async def stop(self) -> None:
        await asyncio.gather(*(connection.stop() for connection in self.connections))

    async def __aenter__(self) -> McpServers:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def describe_config(config: McpServerConfig) -> str:
    if isinstance(config, HttpServerConfig):
        return config.url
    return " ".join([config.command, *config.args])
