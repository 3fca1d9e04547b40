"""`deskloop mcp list|add|remove|enable|disable`: edits to the MCP servers file."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from deskloop.mcp.client import describe_config
from deskloop.mcp.config import (
    McpConfigError,
    is_enabled,
    parse_server,
    read_servers_file,
    servers_file,
    write_servers_file,
)

SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


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
    for name, entry in servers.items():
        config = parse_server(name, entry, path)
        kind = "http " if "url" in entry else "stdio"
        state = "on " if config.enabled else "off"
        print(f"{state}  {kind}  {name}  {describe_config(config)}")
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
    if not SERVER_NAME.match(name):
        raise McpConfigError(
            f"server name {name!r} must be 1-40 letters, digits, '_' or '-' "
            "(it becomes part of each tool's name)"
        )
    command = list(args.command or [])
    if command[:1] == ["--"]:
        command = command[1:]
    if bool(args.url) == bool(command):
        raise McpConfigError(
            "give either --url URL (HTTP) or a command after the name (stdio), e.g. "
            "`deskloop mcp add time -- uvx mcp-server-time`"
        )
    entry: dict[str, Any]
    if args.url:
        entry = {"url": args.url, "headers": _pairs(args.header, "--header")}
    else:
        entry = {"command": command[0], "args": command[1:], "env": _pairs(args.env, "--env")}
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
