"""The built-in tool families, in order, and the one function that builds the native tool set.

A session, `deskloop tools` and `deskloop mcp serve` all build their tools here, so they
agree. Registering a family is one line in NATIVE_FAMILIES; its on/off setting is
`tools.<name>` (env `DESKLOOP_TOOLS_<NAME>`).
"""

from __future__ import annotations

from deskloop.settings import Settings
from deskloop.tools.browser import BROWSER_FAMILY
from deskloop.tools.browser_profile import BROWSER_PROFILE_FAMILY
from deskloop.tools.contract import Tool, ToolContext, ToolFamily
from deskloop.tools.files import FILES_FAMILY
from deskloop.tools.followup import FOLLOWUP_FAMILY
from deskloop.tools.graph import GRAPH_FAMILY
from deskloop.tools.observer import OBSERVER_FAMILY
from deskloop.tools.permissions import PERMISSIONS_FAMILY
from deskloop.tools.preferences import PREFERENCES_FAMILY
from deskloop.tools.routines import ROUTINES_FAMILY
from deskloop.tools.screen import SCREEN_FAMILY
from deskloop.tools.speech import SPEECH_FAMILY
from deskloop.tools.sql import SQL_FAMILY

NATIVE_FAMILIES: tuple[ToolFamily, ...] = (
    SCREEN_FAMILY,
    BROWSER_FAMILY,
    FOLLOWUP_FAMILY,
    ROUTINES_FAMILY,
    SQL_FAMILY,
    FILES_FAMILY,
    GRAPH_FAMILY,
    OBSERVER_FAMILY,
    PREFERENCES_FAMILY,
    SPEECH_FAMILY,
    BROWSER_PROFILE_FAMILY,
    PERMISSIONS_FAMILY,
)


def family_enabled(settings: Settings, family: ToolFamily) -> bool:
    """The setting `tools.<name>`; a family without one (an add-on) is on."""
    return bool(getattr(settings.tools, family.name, True))


def enabled_families(settings: Settings, *, for_mcp_serve: bool = False) -> list[ToolFamily]:
    """The families switched on, without those that need a person when serving over MCP."""
    return [
        family
        for family in NATIVE_FAMILIES
        if family_enabled(settings, family) and not (for_mcp_serve and family.needs_person)
    ]


def family_tool_sets(
    context: ToolContext, *, for_mcp_serve: bool = False
) -> dict[str, list[Tool]]:
    """The tools of each enabled family, in family order."""
    return {
        family.name: family.build(context)
        for family in enabled_families(context.settings, for_mcp_serve=for_mcp_serve)
    }


def native_tool_set(context: ToolContext, *, for_mcp_serve: bool = False) -> list[Tool]:
    """Every tool of the enabled families, in family order."""
    sets = family_tool_sets(context, for_mcp_serve=for_mcp_serve)
    return [tool for tools in sets.values() for tool in tools]


def left_out_of_mcp_serve(settings: Settings) -> list[ToolFamily]:
    """Enabled families that `deskloop mcp serve` does not offer: they need a person."""
    return [f for f in enabled_families(settings) if f.needs_person]
