"""Which tool names a session can have: the enabled families' tools and the configured MCP
servers' `mcp__SERVER__tool`; a routine's list is checked against them, with "did you mean"."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Collection
from pathlib import Path

from deskloop.settings import load_settings, paths
from deskloop.store import Store
from deskloop.tools.contract import ToolContext

# Always in a session that needs it: the small models' `finish` (agent/finish.py).
ALWAYS_OFFERED = ("finish",)
MCP_PREFIX = "mcp__"


class SessionToolNames:
    """The native tool names an unattended session has and the MCP servers it may start."""

    def __init__(self, native: Collection[str], mcp_servers: Collection[str]) -> None:
        self.native = frozenset(native) | frozenset(ALWAYS_OFFERED)
        self.mcp_servers = frozenset(mcp_servers)

    @classmethod
    def for_context(
        cls, context: ToolContext, mcp_servers: Collection[str] | None = None
    ) -> SessionToolNames:
        """Routines run unattended: the families that need a person are left out, as there."""
        # Here, not at the top: families.py builds the routines family, which imports this.
        from deskloop.tools.families import native_tool_set

        native = [tool.name for tool in native_tool_set(context, for_mcp_serve=True)]
        if mcp_servers is None:
            mcp_servers = configured_mcp_servers(context.paths.mcp_servers_file)
        return cls(native, mcp_servers)

    def problem(self, name: str) -> str | None:
        """Why `name` is not a tool a session can have, with the nearest names; None if it is."""
        if name in self.native:
            return None
        if name.startswith(MCP_PREFIX):
            server, _, tool = name[len(MCP_PREFIX) :].partition("__")
            if server in self.mcp_servers and tool:
                return None  # the server's own list is known only once it runs
            if server in self.mcp_servers:
                return f"{name!r} names no tool: give mcp__{server}__TOOL"
            servers = ", ".join(sorted(self.mcp_servers)) or "none"
            return (
                f"{name!r}: no MCP server named {server!r} is configured (configured: {servers})"
                + _did_you_mean(server, self.mcp_servers, f"{MCP_PREFIX}{{}}__{tool}")
            )
        candidates = {*self.native, *(f"{MCP_PREFIX}{s}__" for s in self.mcp_servers)}
        return f"{name!r} is not a tool a session has" + _did_you_mean(name, candidates, "{}")

    def check(self, names: Collection[str]) -> str | None:
        """Every problem of a list, in one message; None when all are tools a session has."""
        problems = [p for name in names if (p := self.problem(name)) is not None]
        if not problems:
            return None
        return "; ".join(problems) + " (`deskloop tools` lists every tool)"


def tool_list_check(store: Store) -> Callable[[Collection[str]], str | None]:
    """The check `create_routine`/`update_routine` take, for this user's settings and servers."""
    context = ToolContext(settings=load_settings(), paths=paths(), store=store, unattended=True)
    return SessionToolNames.for_context(context).check


def _did_you_mean(name: str, candidates: Collection[str], shape: str) -> str:
    close = difflib.get_close_matches(name, sorted(candidates), n=2, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(shape.format(c) for c in close) + "?"


def configured_mcp_servers(path: Path) -> list[str]:
    """The server names in the MCP registry file (mcp/config.py owns its full reading)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    return [str(name) for name in servers] if isinstance(servers, dict) else []
