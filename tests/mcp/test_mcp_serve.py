"""`deskloop mcp serve`: our tools as an MCP server, called by an MCP client over stdio."""

import os
import sys
from pathlib import Path

import pytest
from served_tools_fixture import FAKE_TOOLS

from deskloop.mcp.client import McpServers
from deskloop.mcp.config import StdioServerConfig
from deskloop.mcp.server import annotations_for
from deskloop.tools import (
    FOLLOWUP_TOOL_NAME,
    ToolContext,
    ToolFailed,
    native_tool_set,
)

SERVED = Path(__file__).with_name("served_tools_fixture.py")
DESKLOOP_MCP_SERVE = [sys.executable, "-m", "deskloop", "mcp", "serve"]


def served_env() -> dict[str, str]:
    """The test's code and home for the child: MCP hosts pass only a few variables on."""
    return {
        name: os.environ[name] for name in ("PYTHONPATH", "DESKLOOP_HOME") if name in os.environ
    }


@pytest.mark.slow
async def test_another_mcp_host_lists_and_calls_our_tools_over_stdio() -> None:
    config = StdioServerConfig("deskloop", sys.executable, [str(SERVED)], served_env())
    async with McpServers([config], on_stderr=lambda server, line: None) as servers:
        tools = {tool.name: tool for tool in await servers.start()}
        remote = {tool.name: tool for tool in servers.connections[0].tools}
        shouted = await tools["mcp__deskloop__fake_shout"].run({"text": "hi"}, None)  # type: ignore[arg-type]
        with pytest.raises(Exception, match="invalid input for fake_shout"):
            await tools["mcp__deskloop__fake_shout"].run({"txt": "hi"}, None)  # type: ignore[arg-type]
        with pytest.raises(
            Exception, match=r"permission denied: .*nobody is here to ask.*policy_destructive auto"
        ):
            await tools["mcp__deskloop__fake_wipe"].run({"text": "all"}, None)  # type: ignore[arg-type]
    assert shouted == [{"type": "text", "text": "HI"}]
    assert remote["fake_shout"].annotations == annotations_for("read")
    assert tools["mcp__deskloop__fake_shout"].risk == "read"
    assert tools["mcp__deskloop__fake_wipe"].risk == "destructive"
    assert remote["fake_wipe"].input_schema == FAKE_TOOLS[1].input_schema


@pytest.mark.slow
async def test_a_tool_with_a_bug_answers_with_an_error_result_and_the_server_goes_on() -> None:
    config = StdioServerConfig("deskloop", sys.executable, [str(SERVED)], served_env())
    stderr: list[str] = []
    async with McpServers([config], on_stderr=lambda server, line: stderr.append(line)) as servers:
        await servers.start()
        connection = servers.connections[0]
        for attempt in ("first", "second"):
            with pytest.raises(
                ToolFailed,
                match=rf"fake_crash failed unexpectedly: RuntimeError: "
                rf"fake bug while handling '{attempt}'",
            ):
                await connection.call("fake_crash", {"text": attempt})
        shouted = await connection.call("fake_shout", {"text": "still serving"})
    assert shouted == [{"type": "text", "text": "STILL SERVING"}]
    assert not any("Traceback" in line for line in stderr), stderr


@pytest.mark.slow
async def test_a_screen_call_with_no_desktop_is_an_error_result_that_says_how_to_fix_it() -> None:
    # No DISPLAY and no session bus reach the child, as when a host starts it outside the desktop.
    config = StdioServerConfig(
        "deskloop", DESKLOOP_MCP_SERVE[0], DESKLOOP_MCP_SERVE[1:], served_env()
    )
    stderr: list[str] = []
    async with McpServers([config], on_stderr=lambda server, line: stderr.append(line)) as servers:
        await servers.start()
        connection = servers.connections[0]
        # An `isError` result is raised with its own words; a JSON-RPC error would read
        # "MCP server 'deskloop' answered: ...".
        for _ in range(2):
            with pytest.raises(ToolFailed, match=r"^observe failed: no desktop to reach.*DISPLAY"):
                await connection.call("observe", {})
        with pytest.raises(ToolFailed, match=r"^invalid input for click: .*does not match"):
            await connection.call("click", {"id": "not an id"})
        assert connection.state == "running"
    assert not any("Traceback" in line for line in stderr), stderr


@pytest.mark.slow
async def test_mcp_serve_offers_the_native_set_less_what_needs_a_person(
    tool_context: ToolContext,
) -> None:
    config = StdioServerConfig(
        "deskloop", DESKLOOP_MCP_SERVE[0], DESKLOOP_MCP_SERVE[1:], served_env()
    )
    async with McpServers([config], on_stderr=lambda server, line: None) as servers:
        await servers.start()
        served = [tool.name for tool in servers.connections[0].tools]
    session = [tool.name for tool in native_tool_set(tool_context)]
    assert "observe" in served and FOLLOWUP_TOOL_NAME not in served
    assert served == [name for name in session if name != FOLLOWUP_TOOL_NAME]
