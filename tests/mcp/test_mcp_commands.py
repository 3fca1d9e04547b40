"""`deskloop mcp list|add|remove|enable|disable` edit the servers file a user can paste into."""

import argparse
import json
import os
from pathlib import Path

import pytest

from deskloop.mcp.arguments import add_mcp_arguments
from deskloop.mcp.commands import mcp_command
from deskloop.mcp.config import (
    HttpServerConfig,
    McpConfigError,
    StdioServerConfig,
    load_servers,
    servers_file,
)


@pytest.fixture(autouse=True)
def server_commands_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-in executables named like the servers these tests add (`mcp add` checks PATH)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("uvx", "npx", "x", "other"):
        script = folder / name
        script.write_text("#!/bin/sh\nexit 0\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="deskloop mcp")
    add_mcp_arguments(parser)
    return mcp_command(parser.parse_args(argv))


def test_add_writes_the_shape_other_mcp_hosts_use() -> None:
    assert run("add", "--env", "TZ=UTC", "time", "--", "uvx", "mcp-server-time") == 0
    assert run("add", "--url", "http://127.0.0.1:9/mcp", "--header", "X-Key=abc", "web") == 0
    assert json.loads(servers_file().read_text()) == {
        "mcpServers": {
            "time": {
                "command": "uvx",
                "args": ["mcp-server-time"],
                "env": {"TZ": "UTC"},
                "enabled": True,
            },
            "web": {"url": "http://127.0.0.1:9/mcp", "headers": {"X-Key": "abc"}, "enabled": True},
        }
    }
    assert load_servers() == [
        StdioServerConfig("time", "uvx", ["mcp-server-time"], {"TZ": "UTC"}),
        HttpServerConfig("web", "http://127.0.0.1:9/mcp", {"X-Key": "abc"}),
    ]


def test_a_pasted_config_keeps_its_other_keys_through_edits() -> None:
    pasted = {
        "mcpServers": {
            "files": {"command": "npx", "args": ["-y", "server-fs", "/tmp"], "type": "stdio"},
            "old": {"command": "old-server", "disabled": True},
        },
        "otherHostSetting": 1,
    }
    servers_file().parent.mkdir(parents=True)
    servers_file().write_text(json.dumps(pasted))
    assert [(c.name, c.enabled) for c in load_servers()] == [("files", True), ("old", False)]

    run("disable", "files")
    run("enable", "old")
    saved = json.loads(servers_file().read_text())
    assert saved["otherHostSetting"] == 1
    assert saved["mcpServers"]["files"] == {
        "command": "npx",
        "args": ["-y", "server-fs", "/tmp"],
        "type": "stdio",
        "enabled": False,
    }
    assert saved["mcpServers"]["old"] == {"command": "old-server", "enabled": True}


def test_list_shows_state_kind_and_command(capsys: pytest.CaptureFixture[str]) -> None:
    run("list")
    assert "no MCP servers" in capsys.readouterr().out
    run("add", "time", "--", "uvx", "mcp-server-time")
    run("add", "--disabled", "--url", "http://h/mcp", "web")
    capsys.readouterr()
    run("list")
    assert capsys.readouterr().out.splitlines() == [
        "STATE  KIND   NAME  COMMAND OR URL",
        "on     stdio  time  uvx mcp-server-time",
        "off    http   web   http://h/mcp",
    ]


def test_remove_takes_a_server_out() -> None:
    run("add", "time", "uvx", "mcp-server-time")
    run("remove", "time")
    assert load_servers() == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("add", "bad name", "--", "x"), "letters, digits"),
        (("add", "--url", "http://h", "both", "--", "x"), "either --url"),
        (("add", "none"), "either --url"),
        (("add", "a__b", "--", "x"), "must not contain '__'"),
        (("add", "_a", "--", "x"), "must not contain '__' or start or end with '_'"),
        (("add", "-", "--", "x"), "at least one letter or digit"),
        (("add", "_-_", "--", "x"), "at least one letter or digit"),
        (("add", "ghost", "--", "no-such-server-cmd"), "cannot start 'no-such-server-cmd'"),
        (("add", "ghost", "--", "/nowhere/server"), "is not an executable file"),
        (("add", "web", "--url", "notaurl"), "--url must be the server's http"),
        (("add", "--env", "NOEQUALS", "env", "--", "x"), "KEY=VALUE"),
        (("remove", "ghost"), "no MCP server 'ghost'"),
        (("enable", "ghost"), "known: none"),
    ],
)
def test_mistakes_are_explained(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(McpConfigError, match=message):
        run(*argv)


def test_the_commands_own_flags_survive_after_the_separator() -> None:
    run("add", "--env", "A=1", "files", "--", "npx", "-y", "server-fs", "--root", "/tmp")
    assert load_servers()[0].args == ["-y", "server-fs", "--root", "/tmp"]  # type: ignore[union-attr]


def test_adding_twice_needs_force() -> None:
    run("add", "time", "--", "uvx", "mcp-server-time")
    with pytest.raises(McpConfigError, match="--force"):
        run("add", "time", "--", "other")
    run("add", "--force", "time", "--", "other")
    assert load_servers()[0] == StdioServerConfig("time", "other")


def test_a_broken_servers_file_says_how_to_recover() -> None:
    servers_file().parent.mkdir(parents=True)
    servers_file().write_text("{not json")
    with pytest.raises(McpConfigError, match="fix or delete it"):
        load_servers()
    servers_file().write_text(json.dumps({"mcpServers": {"x": {"args": []}}}))
    with pytest.raises(McpConfigError, match='needs a "command"'):
        load_servers()


@pytest.mark.parametrize(
    "argv",
    [
        ("add", "z", "--env", "FOO=1", "--", "x"),
        ("add", "z", "--env", "FOO=1", "--disabled", "--", "x", "--env", "mine"),
        ("add", "--env", "FOO=1", "z", "--disabled", "--", "x", "--env", "mine"),
        ("add", "--disabled", "--env=FOO=1", "z", "--", "x", "--env", "mine"),
    ],
)
def test_options_may_follow_the_name_as_in_other_hosts(argv: tuple[str, ...]) -> None:
    assert run(*argv) == 0
    (server,) = load_servers()
    assert server.name == "z"
    assert server.env == {"FOO": "1"}  # type: ignore[union-attr]
    assert server.command == "x"  # type: ignore[union-attr]
    assert server.args[:2] in (["--env", "mine"], [])  # type: ignore[union-attr]
    if "--disabled" in argv[: argv.index("--")]:
        assert not server.enabled


def test_add_through_the_deskloop_command(capsys: pytest.CaptureFixture[str]) -> None:
    from deskloop.cli import main

    assert main(["mcp", "add", "w", "--disabled", "--", "x"]) == 0
    assert main(["mcp", "add", "z", "--env", "FOO=1", "--", "x", "-v"]) == 0
    capsys.readouterr()
    assert main(["mcp", "list"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["off    stdio  w     x", "on     stdio  z     x -v"]
