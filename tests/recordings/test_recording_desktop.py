"""Recording a person's demonstration on real GTK3 apps: xdotool moves the pointer and
types (never the accessibility API), the recorder listens, and the saved file is read."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from deskloop.recordings.recorder import Recorder
from deskloop.recordings.recording import Recording, RecordingFiles, Step
from deskloop.screen.backend import Target
from deskloop.screen.backends.atspi.backend import AtspiBackend
from deskloop.screen.backends.atspi.events import AtspiEventSource
from deskloop.screen.tree import NodeData
from deskloop.screen.virtual_desktop import AppSpec, VirtualDesktop

pytestmark = pytest.mark.desktop

PAUSE_S = 0.4  # between a person's actions, so each lands before the next
PASSWORD = "hunter2-Secret"


class Person:
    """Acts on the desktop the way a person does: the pointer and the keyboard (xdotool)."""

    def __init__(self, desktop: VirtualDesktop) -> None:
        self.desktop = desktop

    async def run(self, *args: str) -> None:
        await asyncio.to_thread(self.desktop.xdotool, *args)
        await asyncio.sleep(PAUSE_S)

    async def click(self, node: NodeData) -> None:
        assert node.box is not None, f"{node.role} {node.name!r} is not on screen"
        x, y = node.box.center
        await self.run("mousemove", str(x), str(y))
        await self.run("click", "1")

    async def click_at(self, x: int, y: int) -> None:
        await self.run("mousemove", str(x), str(y))
        await self.run("click", "1")

    async def type(self, text: str) -> None:
        await self.run("type", "--delay", "30", text)

    async def key(self, chord: str) -> None:
        await self.run("key", chord)


async def nodes_of(app: str) -> list[NodeData]:
    """Where things are on screen, to aim the pointer (the test's eyes, not its hands)."""
    backend = await AtspiBackend.connect()
    try:
        return list((await backend.read(Target(app=app))).nodes)
    finally:
        await backend.close()


def pick(
    nodes: list[NodeData],
    role: str,
    name: str | None = None,
    *,
    enabled: bool = True,
    unchecked: bool = False,
) -> NodeData:
    for node in nodes:
        if node.role != role or (name is not None and node.name != name) or node.box is None:
            continue
        if enabled and "disabled" in node.states:
            continue
        if unchecked and ("checked" in node.states or "mixed" in node.states):
            continue
        return node
    raise AssertionError(f"no {role} {name!r} on screen")


async def record(
    folder: Path, demonstrate: Callable[[], Awaitable[None]], app: str | None = None
) -> Recording:
    """Record while `demonstrate` runs; returns the recording as saved in `folder`."""
    files = RecordingFiles(folder)
    source = await AtspiEventSource.connect(app)
    running = frozenset(app.name for app in await source.backend.list_apps())
    recorder = Recorder(source, "demo", files, only_app=app, apps_at_start=running)
    stop = asyncio.Event()
    recording = asyncio.create_task(recorder.run(stop))
    try:
        await demonstrate()
        await asyncio.sleep(1.0)
    finally:
        stop.set()
    await recording
    return files.load("demo")


def steps_of(recording: Recording, action: str) -> list[Step]:
    return [step for step in recording.steps if step.action == action]


async def test_a_demonstration_across_two_apps_becomes_named_steps(
    desktop_env: VirtualDesktop, tmp_path: Path
) -> None:
    person = Person(desktop_env)
    factory = await nodes_of("gtk3-widget-factory")
    check = pick(factory, "check", "checkbutton")
    radio = pick(factory, "radio", "radiobutton", unchecked=True)
    entry = next(
        node
        for node in factory
        if node.role == "entry"
        and not node.value
        and "disabled" not in node.states
        and node.box
        and "multiline" not in node.states
    )
    other_entry = next(
        node
        for node in factory
        if node.role == "entry"
        and node.value == "entry"
        and "disabled" not in node.states
        and node.box
    )
    row = pick(factory, "cell", "Otto")
    pad = await nodes_of("mousepad")
    document = pick(pad, "entry")
    edit = pick(pad, "menu", "Edit")

    async def demonstrate() -> None:
        await person.click(check)
        await person.click(radio)
        await person.click(entry)
        await person.type("anna@example.com")
        await person.key("ctrl+a")
        await person.key("ctrl+c")
        await person.click(other_entry)
        await person.key("ctrl+a")
        await person.key("ctrl+v")  # a paste is the field's step, not a chord
        await person.click(row)
        await person.click(document)
        await person.key("ctrl+End")
        await person.type("hello world")
        await person.click(edit)
        await asyncio.sleep(0.5)
        assert edit.box is not None
        # The open menu hangs below its title; "Select All" is one of its items.
        await person.click_at(edit.box.x + 60, edit.box.y + edit.box.height + 8 * 25 + 12)
        await person.key("ctrl+s")
        await asyncio.sleep(0.5)
        await person.key("Escape")

    recording = await record(tmp_path, demonstrate)
    intents = [step.intent for step in recording.steps]

    clicks = steps_of(recording, "click")
    assert any(s.intent.startswith("click check box 'checkbutton'") for s in clicks), intents
    box_step = next(s for s in clicks if s.intent.startswith("click check box"))
    assert box_step.postcondition is not None
    assert box_step.postcondition.kind in ("checked", "unchecked")
    assert box_step.locators[0].kind == "role_name"
    assert box_step.locators[-1].kind == "bounds"
    radio_step = next(s for s in clicks if s.intent.startswith("click radio button"))
    assert radio_step.postcondition is not None and radio_step.postcondition.kind == "checked"

    texts = steps_of(recording, "set_text")
    typed = [s for s in texts if s.app == "gtk3-widget-factory"]
    assert len(typed) == 2, intents  # one step per field, not one per key
    assert [s.text for s in typed] == ["anna@example.com", "anna@example.com"]
    assert typed[0].locators != typed[1].locators
    assert typed[0].postcondition is not None and typed[0].postcondition.value == "anna@example.com"
    document_steps = [s for s in texts if s.app == "mousepad"]
    assert len(document_steps) == 1, intents
    assert document_steps[0].text.endswith("hello world")
    assert document_steps[0].window == "Mousepad"  # never the changing "*Untitled 1" part

    selects = steps_of(recording, "select")
    assert [s.intent for s in selects] == ["select row 'Otto' in window 'gtk3-widget-factory'"]

    menus = steps_of(recording, "menu")
    assert [s.menu_path for s in menus] == [("Edit", "Select All")], intents
    assert menus[0].intent == "choose menu Edit > Select All in window 'Mousepad'"

    chords = steps_of(recording, "keys")
    assert [s.text for s in chords][:1] == ["ctrl+s"], intents
    assert "press Ctrl+S" in intents
    # ctrl+End moved the caret inside the document, ctrl+a/c/v edited fields: no steps.
    assert not any(s.text in ("ctrl+End", "ctrl+a", "ctrl+c", "ctrl+v") for s in chords)

    assert set(recording.apps) >= {"gtk3-widget-factory", "mousepad"}
    assert intents.index(box_step.intent) < intents.index(menus[0].intent)


async def test_a_password_typed_while_recording_is_not_in_the_file(
    desktop_env: VirtualDesktop, tmp_path: Path
) -> None:
    spec = AppSpec("entry-buffer", ("gtk3-demo", "--run", "entry_buffer"), "gtk3-demo", (0, 0))
    desktop_env.launch(spec)
    try:
        window = ""
        for _ in range(100):
            window = desktop_env.xdotool("search", "--onlyvisible", "--name", "^Entry Buffer$")
            if window:
                break
            await asyncio.sleep(0.1)
        assert window, "gtk3-demo showed no Entry Buffer window"
        window = window.splitlines()[0]
        desktop_env.xdotool("windowmove", "--sync", window, "1500", "900")
        desktop_env.xdotool("windowraise", window)
        await asyncio.sleep(0.5)
        person = Person(desktop_env)
        # The password field is the lower of the two entries sharing one buffer.
        x, y = 1500 + 200, 900 + 83

        async def demonstrate() -> None:
            await person.click_at(x, y)
            await person.type(PASSWORD)
            await person.key("Tab")

        recording = await record(tmp_path, demonstrate)
    finally:
        desktop_env.stop_app(spec.key)
    text = (tmp_path / "demo.json").read_text()
    assert PASSWORD not in text
    assert PASSWORD[:6] not in text
    secrets = [step for step in recording.steps if step.secret]
    assert len(secrets) == 1, [step.intent for step in recording.steps]
    assert secrets[0].action == "set_text" and secrets[0].text == ""
    assert secrets[0].postcondition is None


def test_record_without_a_display_says_what_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "AT_SPI_BUS_ADDRESS", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    result = subprocess.run(
        [sys.executable, "-m", "deskloop", "record", "nowhere"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "DISPLAY" in result.stderr


async def test_a_list_row_in_gtk3_demo_recorded_for_that_app_only(
    desktop_env: VirtualDesktop, tmp_path: Path
) -> None:
    person = Person(desktop_env)
    demo = await nodes_of("gtk3-demo")
    row = pick(demo, "cell", "Assistant")
    factory = await nodes_of("gtk3-widget-factory")
    check = pick(factory, "check", "checkbutton")

    async def demonstrate() -> None:
        await person.click(check)  # another app: left out
        await person.click(row)

    recording = await record(tmp_path, demonstrate, app="gtk3-demo")
    selects = [step for step in recording.steps if step.action == "select"]
    assert [step.intent.split(" in ")[0] for step in recording.steps] == [
        "select row 'Assistant'"
    ], [step.intent for step in recording.steps]
    assert selects[0].postcondition is not None
    assert selects[0].postcondition.kind == "selected"
    assert recording.apps == ("gtk3-demo",)


async def test_record_and_stop_from_the_routines_page(
    desktop_env: VirtualDesktop, tmp_path: Path
) -> None:
    import httpx

    from deskloop.ui import Access, create_app
    from deskloop.ui.security import CSRF_HEADER
    from tests.ui.helpers import BASE, PORT

    access = Access(port=PORT)
    transport = httpx.ASGITransport(app=create_app(access))
    headers = {CSRF_HEADER: access.csrf, "origin": BASE}
    person = Person(desktop_env)
    check = pick(await nodes_of("gtk3-widget-factory"), "check", "checkbutton")
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as page:
        started = await page.post(
            "/api/recordings/record", json={"name": "from-the-page", "app": "gtk3-widget-factory"}
        )
        assert started.status_code == 202, started.text
        assert started.json()["recording"]["name"] == "from-the-page"
        await person.click(check)
        live: list[str] = []
        for _ in range(50):
            live = (await page.get("/api/recordings")).json()["recording"]["steps"]
            if live:
                break
            await asyncio.sleep(0.1)
        assert live and "click check box 'checkbutton'" in live[0]
        stopped = (await page.post("/api/recordings/stop")).json()
    assert stopped["recording"] is None
    (saved,) = stopped["recordings"]
    assert saved["name"] == "from-the-page"
    assert saved["steps"][0].startswith("click check box 'checkbutton'")


async def test_an_app_started_while_recording_gets_an_open_app_step(
    desktop_env: VirtualDesktop, tmp_path: Path
) -> None:
    spec = AppSpec("icon-browser", ("gtk3-icon-browser",), "gtk3-icon-browser", (1500, 700))
    person = Person(desktop_env)

    async def demonstrate() -> None:
        desktop_env.launch(spec)
        await asyncio.to_thread(desktop_env.wait_for_window, spec)
        await asyncio.sleep(1.5)
        nodes = await nodes_of("gtk3-icon-browser")
        buttons = [
            node
            for node in nodes
            if node.role in ("toggle", "button", "radio")
            and node.name
            and node.box
            and "disabled" not in node.states
            and node.name not in ("Close", "Minimize", "Maximize")
        ]
        assert buttons, [(node.role, node.name) for node in nodes]
        await person.click(buttons[0])

    try:
        recording = await record(tmp_path, demonstrate)
    finally:
        desktop_env.stop_app(spec.key)
    intents = [step.intent for step in recording.steps]
    assert intents[0] == "open app gtk3-icon-browser", intents
    assert recording.steps[0].text == "gtk3-icon-browser"
    assert len(intents) >= 2 and "gtk3-icon-browser" in recording.apps
