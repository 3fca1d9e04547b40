"""A routine's tool list names tools a session can have, else it is refused with "did you mean"."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from deskloop.routines.routines import RoutineChanges, RoutineError, create_routine, update_routine
from deskloop.settings import load_settings, paths
from deskloop.store import Store
from deskloop.tools import BadToolArguments, ToolContext
from deskloop.tools.routines import routines_tools
from deskloop.tools.tool_names import tool_list_check


@pytest.fixture
def store() -> Iterator[Store]:
    paths().mcp_servers_file.parent.mkdir(parents=True, exist_ok=True)
    paths().mcp_servers_file.write_text(
        json.dumps({"mcpServers": {"time": {"command": "mcp-server-time"}}})
    )
    with Store.open() as opened:
        yield opened


def test_unknown_tools_are_refused_with_the_nearest_names(store: Store) -> None:
    check = tool_list_check(store)
    with pytest.raises(RoutineError) as unknown:
        create_routine(store, "r", prompt="p", schedule="every:60",
                       tools=("click", "nosuchtool", "obsreve"), check_tools=check)  # fmt: skip
    said = str(unknown.value)
    assert "'nosuchtool' is not a tool a session has" in said
    assert "'obsreve' is not a tool a session has; did you mean observe" in said
    assert "'click'" not in said and "`deskloop tools` lists every tool" in said
    with pytest.raises(RoutineError) as server:
        create_routine(store, "r", prompt="p", schedule="every:60",
                       tools=("mcp__tmie__get_current_time",), check_tools=check)  # fmt: skip
    assert "no MCP server named 'tmie' is configured (configured: time)" in str(server.value)
    assert "did you mean mcp__time__get_current_time?" in str(server.value)
    made = create_routine(store, "r", prompt="p", schedule="every:60",
                          tools=("click", "mcp__time__get_current_time"), check_tools=check)  # fmt: skip
    assert made.tools == ("click", "mcp__time__get_current_time")
    with pytest.raises(RoutineError, match="did you mean type_text"):
        update_routine(store, "r", RoutineChanges(tools=("type_txt",)), check_tools=check)


def test_routines_create_and_update_tools_check_too(store: Store) -> None:
    context = ToolContext(settings=load_settings(), paths=paths(), store=store)
    tools = {tool.name: tool for tool in routines_tools(context)}
    create = {"name": "r", "prompt": "p", "schedule": "every:60", "tools": ["nosuchtool"]}
    with pytest.raises(BadToolArguments, match="'nosuchtool' is not a tool a session has"):
        asyncio.run(tools["routines_create"].run(create, context))
    asyncio.run(tools["routines_create"].run({**create, "tools": ["observe"]}, context))
    with pytest.raises(BadToolArguments, match="did you mean observe"):
        asyncio.run(tools["routines_update"].run({"name": "r", "tools": ["obsrve"]}, context))


def test_the_cli_refuses_an_unknown_tool() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "deskloop", "routines", "add", "r", "--prompt", "p",
         "--schedule", "every:60", "--tools", "click,nosuchtool"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and "Created" not in done.stdout and "added" not in done.stdout
    assert "'nosuchtool' is not a tool a session has" in done.stderr
