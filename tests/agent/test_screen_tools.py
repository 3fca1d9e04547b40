"""The screen tools through dispatch, on a real test desktop (Xvfb, session bus, mousepad)."""

import base64
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from scripted_server import scripted_server, tool_call
from tool_fakes import memory_context

from deskloop.agent.loop import STARTING_SCREEN_HEADER
from deskloop.screen.virtual_desktop import TEST_APPS, VirtualDesktop
from deskloop.store import Store
from deskloop.tools import Dispatcher, PermissionPolicy, TimeoutTier, ToolCall, ToolRegistry
from deskloop.tools.screen import screen_tools

DESKLOOP = [sys.executable, "-m", "deskloop"]
pytestmark = [pytest.mark.desktop, pytest.mark.slow]
MOUSEPAD = tuple(app for app in TEST_APPS if app.key == "mousepad")
ALL_AUTO = PermissionPolicy(
    {"read": "auto", "act": "auto", "destructive": "auto", "external": "auto"}
)
TIMEOUTS = {TimeoutTier.INTERNAL: 10.0, TimeoutTier.MCP: 120.0, TimeoutTier.OTHER: 300.0}


@pytest.fixture(scope="module")
def mousepad_desktop() -> Iterator[VirtualDesktop]:
    running = VirtualDesktop.start(MOUSEPAD)
    try:
        running.wait_for_trees(MOUSEPAD)
        running.focus(MOUSEPAD[0])  # a desktop has a focused window; no window manager here
        yield running
    finally:
        running.stop()


@pytest.fixture
def on_desktop(mousepad_desktop: VirtualDesktop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", mousepad_desktop.display)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", mousepad_desktop.bus_address)


async def test_the_model_observes_types_by_id_and_sees_the_result(on_desktop: None) -> None:
    context = memory_context(session_id=1)
    run = Dispatcher(ToolRegistry(screen_tools()), ALL_AUTO, TIMEOUTS, context=context)
    try:
        (observed,) = await run.run([ToolCall("a", "observe", {"app": "mousepad"})])
        assert observed.status == "ok", observed.content
        editor = re.search(r"^(e\d+) entry", observed.content[0]["text"], re.MULTILINE)
        assert editor is not None, observed.content[0]["text"]
        editor_id = editor.group(1)

        cleared, typed = await run.run(
            [ToolCall("b", "set_value", {"id": editor_id, "value": ""})]
        ) + await run.run(
            [ToolCall("c", "type_text", {"id": editor_id, "text": "hello from the agent"})]
        )
        assert cleared.status == "ok" and typed.status == "ok", typed.content
        assert f'{editor_id} entry = "hello from the agent"' in typed.content[0]["text"]

        (unknown,) = await run.run([ToolCall("d", "click", {"id": "e99999"})])
        assert unknown.status == "bad_input"
        assert "e99999" in unknown.content[0]["text"]

        (shot,) = await run.run([ToolCall("e", "capture_screenshot", {})])
        text, image = shot.content
        assert text["text"].startswith("screenshot ")
        assert base64.b64decode(image["source"]["data"]).startswith(b"\x89PNG")
        assert context.screen is not None
    finally:
        await context.aclose()
    assert context.closers == []


async def test_deskloop_run_drives_a_real_app_with_a_scripted_model(
    on_desktop: None, tmp_path: Path
) -> None:
    outputs = [
        tool_call("observe", {"app": "mousepad"}, "Looking at the editor."),
        tool_call("press_keys", {"keys": "ctrl+a Delete"}),
        tool_call("type_text", {"text": "typed by deskloop run"}),
        "I typed it.",
    ]
    with scripted_server(tmp_path, outputs) as url:
        done = subprocess.run(
            [*DESKLOOP, "run", "Type a line", "--endpoint", url],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    assert '→ observe {"app": "mousepad"}' in done.stdout
    typed = next(line for line in done.stdout.splitlines() if "✓ type_text" in line)
    assert "typed 21 characters into the focus" in typed
    assert done.stdout.rstrip().endswith("I typed it.")
    with Store.open() as store:
        calls = {call.name: call for call in store.tool_calls(1)}
        first = store.messages(1)[0]
    assert calls["type_text"].status == "ok"
    # The task arrived with the screen it starts from, marked as data, with real ids.
    task, screen = first.content
    assert task == {"type": "text", "text": "Type a line"}
    assert screen["text"].startswith(STARTING_SCREEN_HEADER)
    assert "Mousepad" in screen["text"] and " entry" in screen["text"]
    # Synthetic keys reach the app asynchronously; under load, later than the diff's grace.
    context = memory_context()
    check = Dispatcher(ToolRegistry(screen_tools()), ALL_AUTO, TIMEOUTS, context=context)
    try:
        _, seen = await check.run(
            [ToolCall("a", "observe", {"app": "mousepad"})]
        ) + await check.run(
            [ToolCall("b", "wait_for", {"text": "typed by deskloop run", "timeout_s": 20})]
        )
    finally:
        await context.aclose()
    assert seen.status == "ok", seen.content
