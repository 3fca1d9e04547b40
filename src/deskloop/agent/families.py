"""Tool families: each a `module:function` returning `list[Tool]`, loaded the same way.

Native tool families add their line here as they land; a session and `deskloop mcp
serve` offer every family listed.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from deskloop.agent.tools import Tool

BUILTIN_TOOL_FAMILIES: list[str] = ["deskloop.agent.screen_tools:screen_tools"]


def load_tool_families(targets: Sequence[str] | None = None) -> list[Tool]:
    """The tools of every family in `targets` (default: the built-in ones), in order."""
    tools: list[Tool] = []
    for target in BUILTIN_TOOL_FAMILIES if targets is None else targets:
        module_name, _, function_name = target.partition(":")
        family = getattr(importlib.import_module(module_name), function_name)
        tools.extend(family())
    return tools
