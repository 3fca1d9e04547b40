"""`deskloop mcp list|add|remove|enable|disable`: edits to the MCP servers file."""

from __future__ import annotations

import argparse
import json
from typing import Any

from deskloop.command_line import print_table
from deskloop.mcp.client import describe_config
from deskloop.mcp.config import (
    McpConfigError,
    add_server,
    check_server_name,
    parse_server,
    read_servers_file,
    remove_server,
    servers_file,
    set_server_enabled,
)
from deskloop.settings import is_url


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
        entry = {"command": command[0], "args": command[1:], "env": _pairs(args.env, "--env")}
    entry["enabled"] = not args.disabled
    path = add_server(name, entry, replace=args.force)
    print(f"added {name} to {path}")
    return 0


def _edit(name: str, *, remove: bool = False, enabled: bool | None = None) -> int:
    if remove:
        remove_server(name)
        print(f"removed {name}")
    else:
        set_server_enabled(name, bool(enabled))
        print(f"{name} is {'enabled' if enabled else 'disabled'}")
    return 0
