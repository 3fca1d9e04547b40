"""The MCP servers API edits the same file as `deskloop mcp`, in the shape other hosts use."""

import json
import sys

import httpx

from deskloop.mcp.config import HttpServerConfig, StdioServerConfig, load_servers, servers_file


async def test_add_enable_disable_remove(client: httpx.AsyncClient) -> None:
    added = await client.post(
        "/api/mcp",
        json={"name": "time", "command": f"{sys.executable} -m mcp_server_time --local-timezone "
              "'Europe/Paris'", "pairs": "TZ=UTC\n"},
    )
    assert added.status_code == 200
    web = await client.post(
        "/api/mcp", json={"name": "web", "url": "http://127.0.0.1:9/mcp", "pairs": "X-Key=abc"}
    )
    assert [s["name"] for s in web.json()["servers"]] == ["time", "web"]
    assert load_servers() == [
        StdioServerConfig(
            "time",
            sys.executable,
            ["-m", "mcp_server_time", "--local-timezone", "Europe/Paris"],
            {"TZ": "UTC"},
        ),
        HttpServerConfig("web", "http://127.0.0.1:9/mcp", {"X-Key": "abc"}),
    ]

    off = await client.post("/api/mcp/time/disable")
    assert [s["enabled"] for s in off.json()["servers"]] == [False, True]
    assert json.loads(servers_file().read_text())["mcpServers"]["time"]["enabled"] is False
    on = await client.post("/api/mcp/time/enable")
    assert on.json()["servers"][0]["enabled"] is True
    gone = await client.post("/api/mcp/web/remove")
    assert [s["name"] for s in gone.json()["servers"]] == ["time"]
    assert (await client.get("/api/mcp")).json()["servers"][0]["target"] == (
        f"{sys.executable} -m mcp_server_time --local-timezone Europe/Paris"
    )


async def test_mistakes_are_said_plainly(client: httpx.AsyncClient) -> None:
    await client.post("/api/mcp", json={"name": "time", "command": "true"})
    cases = [
        ({"name": "time", "command": "true"}, "already listed; tick Replace"),
        ({"name": "bad name", "command": "true"}, "letters, digits"),
        ({"name": "a__b", "command": "true"}, "must not contain '__'"),
        ({"name": "missing", "command": "no-such-server-here"}, "type its full path in Command"),
        ({"name": "web", "url": "notaurl"}, "http(s) address"),
        ({"name": "both", "command": "x", "url": "http://h/mcp"}, "either a URL"),
        ({"name": "neither"}, "either a URL"),
        ({"name": "quote", "command": "x 'open"}, "quotes"),
        ({"name": "pairs", "command": "true", "pairs": "novalue"}, "KEY=VALUE"),
    ]
    for body, said in cases:
        refused = await client.post("/api/mcp", json=body)
        assert refused.status_code == 400, body
        assert said in refused.json()["error"], body
    unknown = await client.post("/api/mcp/nope/enable")
    assert unknown.status_code == 400 and "no MCP server 'nope'" in unknown.json()["error"]


async def test_messages_speak_the_page_not_the_command_line(client: httpx.AsyncClient) -> None:
    await client.post("/api/mcp", json={"name": "time", "command": "true"})
    for body in (
        {"name": "time", "command": "true"},
        {"name": "missing", "command": "no-such-server-here"},
        {"name": "gone", "command": "/no/such/server"},
    ):
        error = (await client.post("/api/mcp", json=body)).json()["error"]
        assert "--" not in error and "force" not in error, error


async def test_replace_and_edit(client: httpx.AsyncClient) -> None:
    await client.post("/api/mcp", json={"name": "time", "command": "true", "pairs": "A=1"})
    await client.post("/api/mcp/time/disable")
    listed = (await client.get("/api/mcp")).json()["servers"]
    assert listed[0]["pairs"] == "A=1\n" and listed[0]["target"] == "true"
    replaced = await client.post(
        "/api/mcp", json={"name": "time", "command": "true --fast", "pairs": "A=2", "replace": True}
    )
    assert replaced.status_code == 200
    (server,) = replaced.json()["servers"]
    assert (server["target"], server["pairs"], server["enabled"]) == ("true --fast", "A=2\n", False)
    # An edit that changes the name moves the server; it stays off.
    renamed = await client.post(
        "/api/mcp",
        json={"name": "clock", "command": "true", "replace": True, "previous_name": "time"},
    )
    assert [(s["name"], s["enabled"]) for s in renamed.json()["servers"]] == [("clock", False)]
    assert list(json.loads(servers_file().read_text())["mcpServers"]) == ["clock"]
