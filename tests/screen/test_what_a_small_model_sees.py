"""Observations that keep what matters, the window a task names, and finding the bus the
way libatspi does: against the real GTK3 apps of the test desktop."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from deskloop.mcp.client import McpServers
from deskloop.mcp.config import StdioServerConfig
from deskloop.screen.actions import ScreenSession
from deskloop.screen.backends.atspi.backend import AtspiBackend
from deskloop.screen.backends.atspi.connection import connect_buses
from deskloop.screen.errors import ScreenUnavailableError
from deskloop.screen.folding import fold_rows
from deskloop.screen.observation import visible_elements
from deskloop.screen.virtual_desktop import TEST_APPS, VirtualDesktop

pytestmark = pytest.mark.desktop


@pytest.mark.parametrize("app", ["gtk3-demo", "gtk3-widget-factory"])
async def test_every_button_fits_the_default_budget(session: ScreenSession, app: str) -> None:
    result = await session.observe(app=app)
    assert result.snapshot is not None
    buttons = [e for e in visible_elements(result.snapshot) if e.role == "button" and e.name]
    assert len(buttons) >= 4
    for button in buttons:
        assert f'{button.id} button "{button.name}"' in result.text, result.text
    if app == "gtk3-demo":
        # The demo list folds into one line that names the selected demo, when one is
        # selected (earlier tests on this desktop may have moved the selection off screen).
        [fold] = [line for line in result.text.splitlines() if " rows: " in line]
        assert fold.endswith("use find_elements"), fold
        [demos] = fold_rows(result.snapshot)
        selected = [
            e
            for e in visible_elements(result.snapshot)
            if e.id in demos.hidden and "selected" in e.states and e.name
        ]
        if selected:  # a selected page tab ("Info") elsewhere in the window is not a row
            assert "selected" in fold, (fold, [e.name for e in selected])
        assert 'button "Run"' in result.text


async def test_the_first_observation_looks_at_the_window_the_task_names(
    desktop: VirtualDesktop, session: ScreenSession
) -> None:
    mousepad = next(spec for spec in TEST_APPS if spec.key == "mousepad")
    desktop.focus(mousepad)  # the focus is elsewhere, as when a user types in a terminal
    tasks = {
        "In the widget factory, tick the second check box": "gtk3-widget-factory",
        "Click Run in the GTK+ Code Demos window": "gtk3-demo",
        "Type hello into Mousepad": "mousepad",
    }
    for task, app in tasks.items():
        fresh = ScreenSession(session.backend)
        fresh.task = task
        header = (await fresh.observe()).text.splitlines()[0]
        assert (
            f"pid {desktop.pids[next(s.key for s in TEST_APPS if s.atspi_name == app)]}" in header
        )
        assert "(named in the task: " in header, header
    fresh = ScreenSession(session.backend)
    fresh.task = "What is 2+2?"
    header = (await fresh.observe()).text.splitlines()[0]
    assert f"pid {desktop.pids['mousepad']}" in header
    assert header.endswith("(the focused window; the task names no running app)")


async def test_the_bus_is_found_from_the_display_alone(
    desktop_env: VirtualDesktop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    monkeypatch.delenv("AT_SPI_BUS_ADDRESS", raising=False)
    buses = await connect_buses()
    assert buses.found_by == "AT_SPI_BUS" and buses.session is None
    buses.a11y.disconnect()
    backend = await AtspiBackend.connect()
    try:
        apps = {app.name for app in await backend.list_apps()}
        assert {"gtk3-demo", "gtk3-widget-factory", "mousepad"} <= apps
    finally:
        await backend.close()
    monkeypatch.delenv("DISPLAY")
    with pytest.raises(ScreenUnavailableError, match=r'"env": \{"DISPLAY": ":0"\}'):
        await connect_buses()


@pytest.mark.slow
async def test_mcp_serve_with_only_display_observes_and_clicks(
    desktop: VirtualDesktop, tmp_path: Path
) -> None:
    # What an MCP host does: start the server with a scrubbed environment (env -i here),
    # given nothing of the desktop but DISPLAY.
    scrubbed = [
        "-i",
        f"DISPLAY={desktop.display}",
        f"PATH={os.environ['PATH']}",
        f"HOME={tmp_path}",
        f"DESKLOOP_HOME={tmp_path / 'deskloop'}",
        f"PYTHONPATH={os.environ.get('PYTHONPATH', '')}",
        sys.executable,
        "-m",
        "deskloop",
        "mcp",
        "serve",
    ]
    config = StdioServerConfig("deskloop", "env", scrubbed)
    async with McpServers([config], on_stderr=lambda server, line: None) as servers:
        tools = {tool.name: tool for tool in await servers.start()}
        observed = await tools["mcp__deskloop__observe"].run({"app": "gtk3-widget-factory"}, None)  # type: ignore[arg-type]
        assert observed[0]["text"].startswith('window "gtk3-widget-factory"')  # type: ignore[index]
        found = await tools["mcp__deskloop__find_elements"].run({"query": "check"}, None)  # type: ignore[arg-type]
        text = found[0]["text"]  # type: ignore[index]
        line = re.search(r'^(e\d+) check "checkbutton" @', text, re.MULTILINE)
        assert line is not None, text
        clicked = await tools["mcp__deskloop__click"].run({"id": line.group(1)}, None)  # type: ignore[arg-type]
        assert f'~ {line.group(1)} check "checkbutton" checked' in clicked[0]["text"]  # type: ignore[index]
        # Put it back for the other tests on this desktop.
        await tools["mcp__deskloop__click"].run({"id": line.group(1)}, None)  # type: ignore[arg-type]


async def test_the_elements_a_task_names_lead_the_observation(session: ScreenSession) -> None:
    """The enabled, unticked check box first; before, the budget left every enabled one out."""
    fresh = ScreenSession(session.backend)
    fresh.task = "Tick the unticked checkbutton in the widget factory."
    result = await fresh.observe()
    lines = result.text.splitlines()
    assert lines[1] == "what the task names, best match first:", result.text
    assert result.snapshot is not None
    first = result.snapshot.elements[lines[2].split()[0]]
    assert (first.role, first.name) == ("check", "checkbutton")
    assert not first.states & {"checked", "mixed", "disabled"}, first.states
    fresh.task = "Open the tab named page 2 in gtk3-widget-factory."
    lines = (await fresh.observe()).text.splitlines()
    assert ' tab "page 2"' in lines[2], lines[:4]
