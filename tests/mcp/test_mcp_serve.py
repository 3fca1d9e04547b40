"""`deskloop mcp serve`: our tools as an MCP server, called by an MCP client over stdio."""

import sys
from pathlib import Path

import pytest
from served_tools_fixture import FAKE_TOOLS

from deskloop.mcp.client import McpServers
from deskloop.mcp.config import StdioServerConfig
from deskloop.mcp.server import annotations_for
from deskloop.tools import FOLLOWUP_TOOL_NAME, ToolContext, native_tool_set

SERVED = Path(__file__).with_name("served_tools_fixture.py")


@pytest.mark.slow
async def test_another_mcp_host_lists_and_calls_our_tools_over_stdio() -> None:
    config = StdioServerConfig("deskloop", sys.executable, [str(SERVED)])
    async with McpServers([config], on_stderr=lambda server, line: None) as servers:
        tools = {tool.name: tool for tool in await servers.start()}
        remote = {tool.name: tool for tool in servers.connections[0].tools}
        shouted = await tools["mcp__deskloop__fake_shout"].run({"text": "hi"}, None)  # type: ignore[arg-type]
        with pytest.raises(Exception, match="invalid input for fake_shout"):
            await tools["mcp__deskloop__fake_shout"].run({"txt": "hi"}, None)  # type: ignore[arg-type]
        with pytest.raises(Exception, match=r"permission denied: .*nobody is here to ask.*policy_destructive auto"):
            await tools["mcp__deskloop__fake_wipe"].run({"text": "all"}, None)  # type: ignore[arg-type]
    assert shouted == [{"type": "text", "text": "HI"}]
    assert remote["fake_shout"].annotations == annotations_for("read")
    assert tools["mcp__deskloop__fake_shout"].risk == "read"
    assert tools["mcp__deskloop__fake_wipe"].risk == "destructive"
    assert remote["fake_wipe"].input_schema == FAKE_TOOLS[1].input_schema


@pytest.mark.slow
async def test_mcp_serve_offers_the_native_set_less_what_needs_a_person(
    tool_context: ToolContext,
) -> None:
    config = StdioServerConfig("deskloop", sys.executable, ["-m", "deskloop", "mcp", "serve"])
    async with McpServers([config], on_stderr=lambda server, line: None) as servers:
        await servers.start()
        served = [tool.name for tool in servers.connections[0].tools]
    session = [tool.name for tool in native_tool_set(tool_context)]
    assert "observe" in served and FOLLOWUP_TOOL_NAME not in served
    assert served == [name for name in session if name != FOLLOWUP_TOOL_NAME]

