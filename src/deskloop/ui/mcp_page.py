"""MCP servers: list, add, edit, enable, disable, remove; the same mcp-servers.json `deskloop mcp`
edits. Messages speak the page (its fields and its Replace box), not the command line.
"""

from __future__ import annotations

import os
import shlex
import shutil
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from deskloop.mcp.config import (
    HttpServerConfig,
    add_server,
    parse_server,
    read_servers_file,
    remove_server,
    servers_file,
    set_server_enabled,
)
from deskloop.ui.http import BadRequest, json_body, text_field


def servers_view() -> dict[str, Any]:
    path = servers_file()
    listed = []
    for name, entry in read_servers_file(path)["mcpServers"].items():
        config = parse_server(name, entry, path)
        if isinstance(config, HttpServerConfig):
            kind, target, pairs = "http", config.url, config.headers
        else:
            kind, target, pairs = "stdio", shlex.join([config.command, *config.args]), config.env
        listed.append({
            "name": name,
            "kind": kind,
            "target": target,
            "enabled": config.enabled,
            # What the form shows when the server is edited.
            "pairs": "".join(f"{key}={value}\n" for key, value in pairs.items()),
        })  # fmt: skip
    return {"servers": listed, "file": str(path)}


def _pairs(text: str, what: str) -> dict[str, str]:
    """`KEY=VALUE` lines (environment variables or headers) as a dict."""
    pairs = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.strip().partition("=")
        if not sep or not key:
            raise BadRequest(f"{what} take one KEY=VALUE a line, got {line.strip()!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def entry_from(body: dict[str, Any]) -> dict[str, Any]:
    """The file entry for an added server: a URL (HTTP) or a command line (stdio)."""
    url = text_field(body, "url")
    command = text_field(body, "command")
    if bool(url) == bool(command):
        raise BadRequest(
            "give either a URL (an HTTP server) or a command (a stdio server), e.g. "
            "uvx mcp-server-time"
        )
    pairs = text_field(body, "pairs")
    if url:
        return {"url": url, "headers": _pairs(pairs, "headers"), "enabled": True}
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise BadRequest(f"cannot read the command line ({exc}); check its quotes") from exc
    env = _pairs(pairs, "environment variables")
    search_path = env.get("PATH", os.environ.get("PATH"))
    if not words:
        raise BadRequest("type the Command that starts the server, e.g. uvx mcp-server-time")
    if shutil.which(words[0], path=search_path) is None:
        where = "is not an executable file" if os.sep in words[0] else "is not on PATH"
        raise BadRequest(
            f"cannot start {words[0]!r}: it {where}. Install it, or type its full path "
            "in Command (e.g. /usr/local/bin/mcp-server-time)"
        )
    return {"command": words[0], "args": words[1:], "env": env, "enabled": True}


async def list_servers(request: Request) -> Response:
    return JSONResponse(servers_view())


async def add(request: Request) -> Response:
    """Add a server; with `replace`, one of that name is replaced (the Edit form sets it, with
    `previous_name` when the name itself was changed)."""
    body = await json_body(request)
    name = text_field(body, "name", required=True)
    replace = body.get("replace") is True
    previous = text_field(body, "previous_name") or name
    entry = entry_from(body)
    known = read_servers_file(servers_file())["mcpServers"]
    if name in known and not replace:
        raise BadRequest(
            f"a server named {name!r} is already listed; tick Replace to replace it, or "
            "choose another Name"
        )
    if previous in known:  # an edit keeps the server on or off as it was
        entry["enabled"] = parse_server(previous, known[previous], servers_file()).enabled
    add_server(name, entry, replace=True)
    if previous != name and previous in known:
        remove_server(previous)
    return JSONResponse(servers_view())


async def change(request: Request) -> Response:
    name = request.path_params["name"]
    action = request.path_params["action"]
    if action == "remove":
        remove_server(name)
    elif action in ("enable", "disable"):
        set_server_enabled(name, action == "enable")
    else:
        raise BadRequest(f"unknown action {action!r}; use enable, disable or remove")
    return JSONResponse(servers_view())


def mcp_routes() -> list[BaseRoute]:
    return [
        Route("/api/mcp", list_servers, methods=["GET"]),
        Route("/api/mcp", add, methods=["POST"]),
        Route("/api/mcp/{name}/{action}", change, methods=["POST"]),
    ]
