"""Every native family as another MCP host sees it: `deskloop mcp serve` over stdio."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from deskloop.mcp.client import McpServers
from deskloop.mcp.config import StdioServerConfig

NATIVE_TOOLS = {
    "execute_sql",
    "save_knowledge_graph",
    "query_knowledge_graph",
    "save_observer_card",
    "scan_files",
    "search_files",
    "set_user_preferences",
    "complete_onboarding",
    "speak_response",
    "extract_browser_profile",
    "query_browser_profile",
    "edit_browser_profile",
    "check_permission_status",
    "request_permission",
}


@pytest.mark.slow
async def test_each_family_answers_an_mcp_host(tmp_path: Path) -> None:
    user = tmp_path / "user"
    (user / "Documents").mkdir(parents=True)
    (user / "Documents" / "budget.ods").write_bytes(b"PK")
    home = tmp_path / "deskloop-home"
    env = {
        "DESKLOOP_HOME": str(home),
        "HOME": str(user),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "DISPLAY": "",
    }
    config = StdioServerConfig(
        "deskloop", sys.executable, ["-m", "deskloop", "mcp", "serve"], env=env
    )
    stderr: list[str] = []
    async with McpServers([config], on_stderr=lambda server, line: stderr.append(line)) as servers:
        offered = {
            tool.name.removeprefix("mcp__deskloop__"): tool for tool in await servers.start()
        }
        assert set(offered) >= NATIVE_TOOLS, stderr

        async def call(name: str, arguments: dict[str, object]) -> str:
            blocks = await offered[name].run(arguments, None)  # type: ignore[arg-type]
            return "\n".join(str(block.get("text", "")) for block in blocks)

        saved = await call("save_knowledge_graph", {"nodes": [{"label": "Lyon", "type": "place"}]})
        assert saved.startswith("nodes: 1 added")
        assert await call("query_knowledge_graph", {"text": "lyon"}) == "Lyon (place)"
        assert (
            await call("execute_sql", {"query": "SELECT label FROM kg_nodes"})
            == "label\nLyon\n(1 row)"
        )
        with pytest.raises(Exception, match="read-only for the agent"):
            await call("execute_sql", {"query": "DELETE FROM kg_nodes WHERE 1"})
        assert (
            await call("save_observer_card", {"kind": "insight", "title": "t"})
            == "saved card 1 (insight, pending)"
        )
        assert "1 files (1 new or changed" in await call("scan_files", {})
        assert "budget.ods | spreadsheet" in await call("search_files", {"kind": "spreadsheet"})
        with pytest.raises(Exception, match="outside the indexed folders"):
            await call("scan_files", {"path": "/etc"})
        assert (
            await call("set_user_preferences", {"name": "Ada"}) == "saved: agent.user_name = 'Ada'"
        )
        assert 'name = "Ada"' in (home / "config" / "config.toml").read_text()
        assert (await call("complete_onboarding", {})).startswith("onboarding complete; name: Ada")
        with pytest.raises(Exception, match="voice is off"):
            await call("speak_response", {"text": "hello"})
        assert "no Chrome, Chromium, Brave or Firefox profile" in await call(
            "extract_browser_profile", {}
        )
        assert "no copy of the browser profiles yet" in await call("query_browser_profile", {})
        with pytest.raises(Exception, match="no item 1"):
            await call("edit_browser_profile", {"id": 1, "title": "x"})
        assert "can see the screen:" in await call("check_permission_status", {})
        asked = await call("request_permission", {})
        assert "probed again:" in asked and "what the user must still do:" in asked
