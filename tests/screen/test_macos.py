"""The macOS backend and permission probe, fed recorded AX data through a fake of pyobjc."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from deskloop.screen.actions import ScreenSession
from deskloop.screen.backends.macos import ax as ax_module
from deskloop.screen.backends.macos.backend import MacBackend
from deskloop.screen.backends.macos.probe import PermissionWatcher, probe
from deskloop.screen.doctor import macos_checks
from deskloop.screen.errors import DegradedTreeError, StaleElementError


@dataclass(eq=False)
class RecordedElement:
    """One AX element as recorded from a real TextEdit window (attributes by name)."""

    attributes: dict[str, Any]
    children: list[RecordedElement] = field(default_factory=list)


def element(role: str, title: str = "", box: tuple[int, int, int, int] = (0, 0, 0, 0),
            children: list[RecordedElement] | None = None, **more: Any) -> RecordedElement:
    x, y, width, height = box
    attributes = {"AXRole": role, "AXTitle": title, "AXPosition": (x, y),
                  "AXSize": (width, height), "AXEnabled": True, **more}
    return RecordedElement(attributes, children or [])


def textedit_window() -> RecordedElement:
    return element("AXWindow", "Untitled", (100, 100, 600, 400), [
        element("AXToolbar", "", (100, 120, 600, 40), [
            element("AXButton", "Bold", (110, 125, 40, 30)),
            element("AXCheckBox", "Wrap", (160, 125, 60, 30), AXValue=1),
            element("AXRadioButton", "Page 2", (230, 125, 60, 30), AXSubrole="AXTabButton",
                    AXValue=0),
        ]),
        element("AXScrollArea", "", (100, 160, 600, 300), [
            element("AXTextArea", "", (100, 160, 600, 300), AXValue="Hello", AXFocused=True),
        ]),
        element("AXButton", "Far away", (2000, 2000, 40, 30)),
        element("AXStaticText", "", (110, 470, 100, 20), AXValue="Ready"),
    ])


class FakeAxApi:
    """A fake of the pyobjc calls: answers from recorded elements, records what was done."""

    def __init__(self, window: RecordedElement | None = None) -> None:
        self.window = window or textedit_window()
        self.app = RecordedElement({"AXRole": "AXApplication"}, [self.window])
        self.trusted = True
        self.codes: dict[str, int] = {"front": ax_module.AX_SUCCESS, "finder": ax_module.AX_SUCCESS}
        self.finder: int | None = 1
        self.front: int | None = 501
        self.tap_allowed = False
        self.actions: list[tuple[str, str]] = []
        self.set_values: list[tuple[str, str, Any]] = []

    def is_process_trusted(self) -> bool:
        return self.trusted

    def application(self, pid: int) -> Any:
        return ("app", pid)

    def copy_attribute(self, target: Any, name: str) -> tuple[int, Any]:
        if isinstance(target, tuple):
            code = self.codes["finder" if target[1] == 1 else "front"]
            if name in ("AXFocusedWindow", "AXMainWindow"):
                return code, self.window if code == ax_module.AX_SUCCESS else None
            if name == "AXWindows":
                return code, [self.window] if code == ax_module.AX_SUCCESS else None
        return ax_module.AX_ATTRIBUTE_UNSUPPORTED, None

    def copy_attributes(self, target: Any, names: list[str]) -> dict[str, Any]:
        data = {**target.attributes, "AXChildren": target.children}
        return {name: data[name] for name in names if name in data}

    def set_messaging_timeout(self, target: Any, seconds: float) -> None:
        pass

    def perform_action(self, target: Any, action: str) -> int:
        self.actions.append((target.attributes.get("AXTitle", ""), action))
        if action == "AXPress" and target.attributes["AXRole"] == "AXCheckBox":
            target.attributes["AXValue"] = 1 - target.attributes["AXValue"]
        return ax_module.AX_SUCCESS

    def set_attribute(self, target: Any, name: str, value: Any) -> int:
        self.set_values.append((target.attributes["AXRole"], name, value))
        if name == "AXSelectedText":
            target.attributes["AXValue"] += value
        elif name == "AXValue":
            target.attributes["AXValue"] = value
        return ax_module.AX_SUCCESS

    def element_key(self, target: Any) -> str:
        return f"ax{id(target):x}"

    def running_apps(self) -> list[tuple[str, int]]:
        return [("TextEdit", 501), ("Finder", 1)]

    def frontmost_pid(self) -> int | None:
        return self.front

    def finder_pid(self) -> int | None:
        return self.finder

    def activate(self, pid: int) -> None:
        self.actions.append((str(pid), "activate"))

    def accessibility_tap_allowed(self) -> bool:
        return self.tap_allowed

    def screen_recording_allowed(self) -> bool:
        return True

    def input_monitoring_allowed(self) -> bool:
        return True


def test_macos_package_imports_without_pyobjc() -> None:
    assert "ApplicationServices" not in sys.modules
    for name in ("ax", "reader", "backend", "probe"):
        importlib.import_module(f"deskloop.screen.backends.macos.{name}")
    assert "ApplicationServices" not in sys.modules


async def test_recorded_window_reads_into_an_observation() -> None:
    session = ScreenSession(MacBackend(FakeAxApi()))
    text = (await session.observe(app="textedit")).text
    lines = text.splitlines()
    assert lines[0] == 'window "Untitled" app "TextEdit" pid 501 600x400 snapshot 1'
    assert any(line.endswith('button "Bold" @30,40') for line in lines)
    assert any('check "Wrap" checked' in line for line in lines)
    assert any('tab "Page 2"' in line for line in lines)
    assert any('entry = "Hello" focused' in line for line in lines)
    assert any('label "Ready"' in line for line in lines)
    assert "Far away" not in text  # outside the window


async def test_actions_go_through_ax_and_return_diffs() -> None:
    fake = FakeAxApi()
    session = ScreenSession(MacBackend(fake))
    snapshot = (await session.observe(app="TextEdit")).snapshot
    assert snapshot is not None
    wrap = next(e for e in snapshot if e.name == "Wrap")
    editor = next(e for e in snapshot if e.role == "entry")

    clicked = await session.click(wrap.id)
    assert ("Wrap", "AXPress") in fake.actions
    assert clicked.diff is not None and clicked.diff.changed == (
        f'~ {wrap.id} check "Wrap" @90,40 (was: checked)',
    )
    typed = await session.type_text(" world", editor.id)
    assert ("AXTextArea", "AXSelectedText", " world") in fake.set_values
    assert '= "Hello world"' in typed.text
    await session.set_value(editor.id, "new text")
    assert ("AXTextArea", "AXValue", "new text") in fake.set_values


async def test_changed_element_is_a_stale_id() -> None:
    fake = FakeAxApi()
    session = ScreenSession(MacBackend(fake))
    snapshot = (await session.observe(app="TextEdit")).snapshot
    assert snapshot is not None
    bold = next(e for e in snapshot if e.name == "Bold")
    fake.window.children[0].children[0].attributes["AXTitle"] = "Italic"
    with pytest.raises(StaleElementError, match=r"stale id: .* now button 'Italic': observe again"):
        await session.click(bold.id)


def test_probe_trusts_a_working_real_call() -> None:
    result = probe(FakeAxApi(), had_permission_before=False)
    assert result.working and result.verdict == "working"


def test_probe_asks_the_live_database_when_calls_are_refused_after_a_grant() -> None:
    fake = FakeAxApi()
    fake.codes["front"] = ax_module.AX_API_DISABLED
    result = probe(fake, had_permission_before=True, sleep=lambda _: None)
    assert (result.working, result.verdict, result.tap_allowed) == (False, "revoked", False)
    assert result.finder is None  # "API disabled" is no app's doing: no Finder cross-check


def test_probe_blames_the_app_when_finder_answers() -> None:
    fake = FakeAxApi()
    fake.codes.update(front=ax_module.AX_CANNOT_COMPLETE, finder=ax_module.AX_SUCCESS)
    result = probe(fake, had_permission_before=True)
    assert result.working and result.verdict == "app without accessibility"
    assert result.finder is not None and result.finder.answered


def test_probe_asks_the_live_database_when_finder_fails_too() -> None:
    fake = FakeAxApi()
    fake.codes.update(front=ax_module.AX_CANNOT_COMPLETE, finder=ax_module.AX_CANNOT_COMPLETE)
    fake.tap_allowed = True
    result = probe(fake, had_permission_before=True, sleep=lambda _: None)
    assert not result.working and result.verdict == "granted but not working"


def test_with_no_app_in_front_the_real_call_goes_to_finder(tmp_path: Path) -> None:
    fake = FakeAxApi()
    fake.front = None
    result = probe(fake, had_permission_before=False)
    assert result.verdict == "working" and result.frontmost.pid is None
    assert result.finder is not None and result.finder.answered
    fake.codes["finder"] = ax_module.AX_CANNOT_COMPLETE
    result = probe(fake, had_permission_before=False, sleep=lambda _: None)
    assert result.verdict == "refused despite trust"  # the flag says yes; no earlier grant
    fake.finder = None
    report = macos_checks(fake, tmp_path / "granted")
    assert report.verdict.startswith("accessibility unconfirmed: no app is in front, and Finder")


def test_stale_cache_with_live_permission_says_quit_and_reopen(tmp_path: Path) -> None:
    fake = FakeAxApi()
    fake.trusted = False
    fake.codes["front"] = ax_module.AX_API_DISABLED
    fake.tap_allowed = True
    marker = tmp_path / "granted"
    marker.touch()
    report = macos_checks(fake, marker)
    assert report.verdict.startswith("accessibility is granted but not working yet")
    assert report.verdict.endswith("Fix: quit and reopen deskloop (and the terminal app that "
                                   "runs it): macOS gives a grant to the processes started after it")
    assert report.exit_code == 1


def test_never_granted_asks_for_the_permission_without_an_event_tap(tmp_path: Path) -> None:
    fake = FakeAxApi()
    fake.trusted = False
    fake.codes["front"] = ax_module.AX_API_DISABLED
    fake.tap_allowed = True  # would say yes, but must not be asked for a new install
    report = macos_checks(fake, tmp_path / "granted")
    assert not report.can_see
    assert "Privacy & Security > Accessibility" in report.render()
    assert not any(check.name == "event tap" for check in report.checks)


def test_working_probe_is_remembered_and_the_watcher_sees_a_flip(tmp_path: Path) -> None:
    fake = FakeAxApi()
    marker = tmp_path / "granted"
    assert macos_checks(fake, marker).exit_code == 0
    assert marker.exists()
    watcher = PermissionWatcher(fake, marker)
    assert watcher.check() == (watcher.last, False)
    fake.codes["front"] = ax_module.AX_API_DISABLED
    result, changed = watcher.check()
    assert changed and not result.working


async def test_window_without_elements_is_degraded_not_empty() -> None:
    fake = FakeAxApi(element("AXWindow", "Canvas", (0, 0, 400, 300)))
    session = ScreenSession(MacBackend(fake))
    text = (await session.observe(app="TextEdit")).text
    assert text.splitlines()[1].startswith("degraded: the app's window exposes no elements")
    with pytest.raises(DegradedTreeError, match="use capture_screenshot"):
        await session.find_elements("button")
