"""`deskloop mcp list|add|remove|enable|disable`: edits to the MCP servers file."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
from typing import Any

from deskloop.command_line import print_table
from deskloop.mcp.client import describe_config
from deskloop.mcp.config import (
    McpConfigError,
    is_enabled,
    parse_server,
    read_servers_file,
    servers_file,
    write_servers_file,
)
from deskloop.settings import is_url

SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def check_server_name(name: str) -> None:
    """A name that can sit inside `mcp__NAME__tool` and still be read back from it."""
    if not SERVER_NAME.match(name) or not re.search(r"[A-Za-z0-9]", name):
        raise McpConfigError(
            f"server name {name!r} must be 1-40 letters, digits, '_' or '-', with at least "
            "one letter or digit (it becomes part of each tool's name)"
        )
    if "__" in name or name.startswith("_") or name.endswith("_"):
        better = re.sub("_+", "_", name).strip("_") or "server"
        raise McpConfigError(
            f"server name {name!r} must not contain '__' or start or end with '_': tool names "
            f"use '__' to separate the server from the tool (mcp__{name}__tool); "
            f"try {better!r}"
        )


def check_command(command: str, env: dict[str, str]) -> None:
    """The command must be one this machine can start (a path, or a name on PATH)."""
    search_path = env.get("PATH", os.environ.get("PATH"))
    if shutil.which(command, path=search_path) is None:
        where = "is not an executable file" if os.sep in command else "is not on PATH"
        raise McpConfigError(
            f"cannot start {command!r}: it {where}. Install it, or give its full path "
            "after `--`"
        )


def mcp_command(args: argparse.Namespace) -> int:
    action = args.mcp_action
    if action == "list":
        return _list(as_json=bool(getattr(args, "json", False)))
    if action == "add":
        return _add(args)
    if action == "remove":
        return _edit(args.name, remove=True)
    if action in ("enable", "disable"):
        return _edit(args.name, enabled=action == "enable")
    if action == "serve":
        from deskloop.mcp.server import mcp_serve_command  # the SDK's server side, only here

        return mcp_serve_command(args)
    raise McpConfigError(
        f"unknown mcp action {action!r}; use list, add, remove, enable, disable, serve"
    )


def _list(*, as_json: bool) -> int:
    path = servers_file()
    servers = read_servers_file(path)["mcpServers"]
    if as_json:
        print(json.dumps(servers, indent=2))
        return 0
    if not servers:
        print(f"no MCP servers in {path}; add one with `deskloop mcp add NAME -- COMMAND ARGS`")
        return 0
    rows = [("STATE", "KIND", "NAME", "COMMAND OR URL")]
    for name, entry in servers.items():
        config = parse_server(name, entry, path)
        kind = "http" if "url" in entry else "stdio"
        rows.append(("on" if config.enabled else "off", kind, name, describe_config(config)))
    print_table(rows)
    return 0


def _pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    pairs = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise McpConfigError(f"{flag} takes KEY=VALUE, got {item!r}")
        pairs[key] = value
    return pairs


def _add(args: argparse.Namespace) -> int:
    name: str = args.name
    check_server_name(name)
    command = list(args.server_command or [])
    if command[:1] == ["--"]:
        command = command[1:]
    if bool(args.url) == bool(command):
        raise McpConfigError(
            "give either --url URL (HTTP) or a command after `--` (stdio), e.g. "
            "`deskloop mcp add time -- uvx mcp-server-time`"
        )
    entry: dict[str, Any]
    if args.url:
        if not is_url(args.url):
            raise McpConfigError(
                f"--url must be the server's http(s) address, like "
                f"http://127.0.0.1:8000/mcp, not {args.url!r}"
            )
        entry = {"url": args.url, "headers": _pairs(args.header, "--header")}
    else:
        env = _pairs(args.env, "--env")
        check_command(command[0], env)
        entry = {"command": command[0], "args": command[1:], "env": env}
    entry["enabled"] = not args.disabled
    path = servers_file()
    data = read_servers_file(path)
    if name in data["mcpServers"] and not args.force:
        raise McpConfigError(f"server {name!r} is already in {path}; add --force to replace it")
    parse_server(name, entry, path)
    data["mcpServers"][name] = entry
    write_servers_file(data, path)
    print(f"added {name} to {path}")
    return 0


def _edit(name: str, *, remove: bool = False, enabled: bool | None = None) -> int:
    path = servers_file()
    data = read_servers_file(path)
    servers = data["mcpServers"]
    if name not in servers:
        known = ", ".join(servers) or "none"
        raise McpConfigError(f"no MCP server {name!r} in {path} (known: {known})")
    if remove:
        del servers[name]
        print(f"removed {name}")
    else:
        entry = servers[name]
        entry["enabled"] = enabled
        entry.pop("disabled", None)
        print(f"{name} is {'enabled' if is_enabled(entry) else 'disabled'}")
    write_servers_file(data, path)
    return 0
