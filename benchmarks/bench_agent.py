"""`deskloop bench agent`: the agent's own overhead per turn, and an MCP call's round trip.

- Loop overhead per turn with 30 tools registered, model time excluded: building the
  request's tool list, storing the assistant message, dispatching two tool calls
  (schema validation, policy, timeout, events), storing their results and the usage.
  Target (issue 5): median <= 10 ms.
- MCP round trip to a local stdio server (the real `mcp-server-time`): the bare SDK
  call, and the same call through deskloop's dispatch, as a ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from deskloop.agent.dispatch import Dispatcher, ToolCall
from deskloop.agent.policy import PermissionPolicy
from deskloop.agent.registry import ToolRegistry
from deskloop.agent.tools import TimeoutTier, Tool, ToolContext, ToolOutput
from deskloop.mcp.client import McpServers
from deskloop.mcp.config import StdioServerConfig
from deskloop.store import Store, TurnUsage

TARGET_TURN_MS = 10.0
ALL_AUTO = PermissionPolicy(
    {"read": "auto", "act": "auto", "destructive": "auto", "external": "auto"}
)
TIMEOUTS = {TimeoutTier.INTERNAL: 10.0, TimeoutTier.MCP: 120.0, TimeoutTier.OTHER: 300.0}


def desktop_like_tool(index: int) -> Tool:
    """A tool shaped like the screen tools: an element id, some text, an option or two."""

    async def act(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
        return f"done {tool_input['id']}: the window now shows 12 elements"

    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": "^e[0-9]+$", "description": "Element id."},
            "text": {"type": "string", "description": "Text to type or match."},
            "mode": {"type": "string", "enum": ["replace", "append"]},
            "count": {"type": "integer", "minimum": 1, "maximum": 10},
        },
        "required": ["id"],
        "additionalProperties": False,
    }
    return Tool(
        f"desktop_tool_{index}",
        f"Desktop action number {index}: acts on one element by id and reports the result.",
        schema,
        "act",
        TimeoutTier.INTERNAL,
        act,
    )


async def loop_overhead(turns: int, store_path: Path) -> list[float]:
    registry = ToolRegistry(desktop_like_tool(i) for i in range(30))
    dispatcher = Dispatcher(registry, ALL_AUTO, TIMEOUTS)
    timings = []
    with Store.open(store_path) as store:
        session = store.create_session(title="bench")
        store.add_message(session.id, "user", "Fill in the form and save it.")
        for turn in range(turns):
            started = time.perf_counter()
            request_tools = registry.definitions()
            assert len(request_tools) == 30
            calls = [
                ToolCall(f"t{turn}a", "desktop_tool_3", {"id": "e12", "text": "Ada Lovelace"}),
                ToolCall(f"t{turn}b", "desktop_tool_17", {"id": "e40", "mode": "append"}),
            ]
            store.add_message(
                session.id,
                "assistant",
                [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.input} for c in calls],
            )
            for call in calls:
                store.start_tool_call(session.id, call.id, call.name, call.input)
            outcomes = await dispatcher.run(calls)
            for outcome in outcomes:
                store.finish_tool_call(
                    session.id,
                    outcome.call.id,
                    status=outcome.status,
                    result=outcome.content,
                    is_error=outcome.is_error,
                    duration_s=outcome.duration_s,
                )
            store.add_message(session.id, "user", [o.result_block() for o in outcomes])
            store.record_usage(session.id, TurnUsage(turn + 1, 2000 + 50 * turn, 40))
            timings.append(time.perf_counter() - started)
    return timings


async def mcp_round_trips(calls: int) -> tuple[list[float], list[float]]:
    config = StdioServerConfig("time", sys.executable, ["-m", "mcp_server_time"])
    async with McpServers([config], on_stderr=lambda server, line: None) as servers:
        tools = await servers.start()
        connection = servers.connections[0]
        dispatcher = Dispatcher(ToolRegistry(tools), ALL_AUTO, TIMEOUTS)
        arguments = {"timezone": "Europe/Paris"}
        for _ in range(5):  # warm up both paths
            await connection.call("get_current_time", arguments)
        bare, dispatched = [], []
        for index in range(calls):
            started = time.perf_counter()
            await connection.call("get_current_time", arguments)
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            (outcome,) = await dispatcher.run(
                [ToolCall(str(index), "mcp__time__get_current_time", arguments)]
            )
            dispatched.append(time.perf_counter() - started)
            assert outcome.status == "ok", outcome.content
    return bare, dispatched


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--mcp-calls", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        turn_times = asyncio.run(loop_overhead(args.turns, Path(folder) / "bench.db"))
    turn_ms = statistics.median(turn_times) * 1000
    print(
        f"loop overhead per turn (30 tools, 2 calls, store writes): median {turn_ms:.2f} ms, "
        f"{turn_ms / TARGET_TURN_MS:.3f}x the {TARGET_TURN_MS:g} ms target "
        f"({'met' if turn_ms <= TARGET_TURN_MS else 'MISSED'})"
    )

    bare, dispatched = asyncio.run(mcp_round_trips(args.mcp_calls))
    bare_ms = statistics.median(bare) * 1000
    dispatched_ms = statistics.median(dispatched) * 1000
    print(
        f"MCP round trip to mcp-server-time over stdio: median {bare_ms:.2f} ms bare SDK call, "
        f"{dispatched_ms:.2f} ms through dispatch ({dispatched_ms / bare_ms:.2f}x the bare call)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
