"""The MCP servers file, in the shape other MCP hosts use so a user can paste their config.

`{"mcpServers": {name: {command, args, env, enabled} | {url, headers, enabled}}}`; a
`"disabled": true` key (as some hosts write) also switches a server off. Keys deskloop does
not know are kept when the file is edited.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deskloop.errors import DeskloopError
from deskloop.settings import is_url, paths

SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


class McpConfigError(DeskloopError):
    """The servers file or one entry in it cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class StdioServerConfig:
    name: str
    command: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    enabled: bool = True


@dataclass(frozen=True)
class HttpServerConfig:
    name: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    enabled: bool = True


McpServerConfig = StdioServerConfig | HttpServerConfig


def servers_file() -> Path:
    return paths().mcp_servers_file


def read_servers_file(path: Path | None = None) -> dict[str, Any]:
    """The whole file as JSON (an empty registry when it does not exist yet)."""
    target = path if path is not None else servers_file()
    if not target.exists():
        return {"mcpServers": {}}
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise McpConfigError(f"{target} is not valid JSON ({exc}); fix or delete it") from exc
    if not isinstance(data, dict):
        raise McpConfigError(f'{target} must hold a JSON object like {{"mcpServers": {{}}}}')
    servers = data.setdefault("mcpServers", {})
    if not isinstance(servers, dict):
        raise McpConfigError(f'"mcpServers" in {target} must be an object of name: server')
    return data


def write_servers_file(data: dict[str, Any], path: Path | None = None) -> None:
    """Replace the file atomically, so a crash never leaves half a registry."""
    target = path if path is not None else servers_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    temporary.replace(target)


def is_enabled(entry: dict[str, Any]) -> bool:
    return bool(entry.get("enabled", True)) and not bool(entry.get("disabled", False))


def parse_server(name: str, entry: Any, where: Path) -> McpServerConfig:
    """One entry of `mcpServers` as a typed config."""
    if not isinstance(entry, dict):
        raise McpConfigError(f"server {name!r} in {where} must be an object")
    enabled = is_enabled(entry)
    if "url" in entry:
        headers = entry.get("headers", {})
        if not isinstance(headers, dict):
            raise McpConfigError(f"server {name!r} in {where}: headers must be an object")
        return HttpServerConfig(
            name, str(entry["url"]), {str(k): str(v) for k, v in headers.items()}, enabled
        )
    if "command" in entry:
        args = entry.get("args", [])
        env = entry.get("env", {})
        if not isinstance(args, list) or not isinstance(env, dict):
            raise McpConfigError(
                f"server {name!r} in {where}: args must be a list and env an object"
            )
        cwd = entry.get("cwd")
        return StdioServerConfig(
            name,
            str(entry["command"]),
            [str(arg) for arg in args],
            {str(k): str(v) for k, v in env.items()},
            None if cwd is None else str(cwd),
            enabled,
        )
    raise McpConfigError(f'server {name!r} in {where} needs a "command" (stdio) or a "url" (HTTP)')


def load_servers(path: Path | None = None) -> list[McpServerConfig]:
    """Every server in the file, enabled or not, in file order."""
    target = path if path is not None else servers_file()
    data = read_servers_file(target)
    return [parse_server(name, entry, target) for name, entry in data["mcpServers"].items()]


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


def add_server(name: str, entry: dict[str, Any], *, replace: bool = False) -> Path:
    """Check one server entry and add it to the file; returns the file's path."""
    check_server_name(name)
    if "url" in entry and not is_url(str(entry["url"])):
        raise McpConfigError(
            f"the URL must be the server's http(s) address, like http://127.0.0.1:8000/mcp, "
            f"not {entry['url']!r}"
        )
    if "command" in entry:
        check_command(str(entry["command"]), dict(entry.get("env", {})))
    path = servers_file()
    data = read_servers_file(path)
    if name in data["mcpServers"] and not replace:
        raise McpConfigError(f"server {name!r} is already in {path}; add --force to replace it")
    parse_server(name, entry, path)
    data["mcpServers"][name] = entry
    write_servers_file(data, path)
    return path


def _existing(data: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    servers: dict[str, Any] = data["mcpServers"]
    if name not in servers:
        known = ", ".join(servers) or "none"
        raise McpConfigError(f"no MCP server {name!r} in {path} (known: {known})")
    entry: dict[str, Any] = servers[name]
    return entry


def remove_server(name: str) -> None:
    path = servers_file()
    data = read_servers_file(path)
    _existing(data, name, path)
    del data["mcpServers"][name]
    write_servers_file(data, path)


def set_server_enabled(name: str, enabled: bool) -> None:
    """Switch a server on or off, dropping another host's `disabled` key so one flag decides."""
    path = servers_file()
    data = read_servers_file(path)
    entry = _existing(data, name, path)
    entry["enabled"] = enabled
    entry.pop("disabled", None)
    write_servers_file(data, path)
