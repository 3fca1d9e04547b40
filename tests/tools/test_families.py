"""One builder for the native tool set: families in order, each switched by `tools.<name>`."""

from dataclasses import fields, replace

import pytest

from deskloop.settings import Settings, ToolsSettings, load_settings
from deskloop.tools import (
    FOLLOWUP_TOOL_NAME,
    NATIVE_FAMILIES,
    ToolContext,
    enabled_families,
    left_out_of_mcp_serve,
    native_tool_set,
)


def test_every_built_in_family_has_its_setting_and_a_routing_line() -> None:
    settings = {f.name for f in fields(ToolsSettings)}
    for family in NATIVE_FAMILIES:
        assert family.name in settings, f"add `{family.name}: bool = True` to ToolsSettings"
        assert family.routing and "\n" not in family.routing
    assert len({family.name for family in NATIVE_FAMILIES}) == len(NATIVE_FAMILIES)


def test_a_session_gets_every_family_and_mcp_serve_leaves_out_what_needs_a_person(
    tool_context: ToolContext,
) -> None:
    session = [tool.name for tool in native_tool_set(tool_context)]
    served = [tool.name for tool in native_tool_set(tool_context, for_mcp_serve=True)]
    assert {"observe", "click", "capture_screenshot", FOLLOWUP_TOOL_NAME} <= set(session)
    assert served == [name for name in session if name != FOLLOWUP_TOOL_NAME]
    assert [f.name for f in left_out_of_mcp_serve(tool_context.settings)] == ["followup"]


def test_a_family_switched_off_by_environment_is_left_out(
    tool_context: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESKLOOP_TOOLS_SCREEN", "false")
    context = replace(tool_context, settings=load_settings())
    names = [tool.name for tool in native_tool_set(context)]
    assert FOLLOWUP_TOOL_NAME in names and "execute_sql" in names
    assert not {"observe", "click", "capture_screenshot"} & set(names)
    assert "screen" not in [f.name for f in enabled_families(context.settings)]
    assert {"screen", "followup"} <= {f.name for f in enabled_families(Settings())}


def test_screen_results_are_untrusted_and_the_question_is_not(tool_context: ToolContext) -> None:
    by_name = {tool.name: tool for tool in native_tool_set(tool_context)}
    assert by_name["observe"].untrusted and by_name["capture_screenshot"].untrusted
    assert not by_name[FOLLOWUP_TOOL_NAME].untrusted
