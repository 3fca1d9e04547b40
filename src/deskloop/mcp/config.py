"""The MCP servers file, in the shape other MCP hosts use so a user can paste their config.

`{"mcpServers": {name: {command, args, env, enabled} | {url, headers, enabled}}}`; a
`"disabled": true` key (as some hosts write) also switches a server off. Keys deskloop does
not know are kept when the file is edited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deskloop.errors import DeskloopError
from deskloop.settings import paths


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
