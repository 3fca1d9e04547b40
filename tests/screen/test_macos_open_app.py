"""`open_app` on macOS: from the installed app's entry to its pid, without blocking the loop."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import pytest

from deskloop.screen.actions import ScreenSession
from deskloop.screen.backends.macos.ax import PyObjCAx
from deskloop.screen.backends.macos.backend import MacBackend
from deskloop.screen.desktop_entries import find_installed, installed_apps
from deskloop.screen.errors import ActionFailedError
from tests.screen.fake_macos import App, FakeMac, Node, Window, install


@pytest.fixture
def mac(monkeypatch: pytest.MonkeyPatch) -> FakeMac:
    return install(monkeypatch)


class FakeLauncher:
    """Runs nothing: records each command, and `open -a` starts the app on the fake Mac."""

    def __init__(self, mac: FakeMac) -> None:
        self.mac = mac
        self.commands: list[tuple[list[str], bool]] = []

    async def __call__(self, argv: list[str], wait: bool) -> int:
        self.commands.append((argv, wait))
        if argv[:2] == ["open", "-a"]:
            name = Path(argv[2]).name.removesuffix(".app")
            document = Node({"AXRole": "AXTextArea", "AXValue": "", "AXPosition": (100, 130),
                             "AXSize": (600, 370)})
            window = Node({"AXRole": "AXWindow", "AXTitle": "Untitled", "AXPosition": (100, 100),
                           "AXSize": (600, 400)}, [document])
            self.mac.add_app(App(name, 501, windows=[Window("Untitled", (100, 100, 600, 400), window)]))
            return 9000  # the pid of `open`, not of the app
        return 4242


@pytest.fixture
def macos_apps(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "Applications" / "TextEdit.app").mkdir(parents=True)
    return tmp_path / "Applications"


async def test_open_app_by_its_installed_name(mac: FakeMac, macos_apps: Path) -> None:
    entry = find_installed("textedit", installed_apps())
    assert entry is not None
    launcher = FakeLauncher(mac)
    session = ScreenSession(MacBackend(PyObjCAx(), launcher))
    result = await session.open_app(shlex.join(entry.command), timeout_s=2)
    assert launcher.commands == [(["open", "-a", "TextEdit"], True)]
    assert result.text.startswith("started TextEdit (pid 501)")


async def test_open_app_with_a_bundle_path(mac: FakeMac) -> None:
    launcher = FakeLauncher(mac)
    pid = await MacBackend(PyObjCAx(), launcher).launch(["/Applications/TextEdit.app"])
    assert launcher.commands == [(["open", "-a", "/Applications/TextEdit.app"], True)]
    assert pid == 501


async def test_an_open_command_is_run_as_given(mac: FakeMac) -> None:
    launcher = FakeLauncher(mac)
    pid = await MacBackend(PyObjCAx(), launcher).launch(["open", "-a", "TextEdit"])
    assert launcher.commands == [(["open", "-a", "TextEdit"], True)]
    assert pid == 501


async def test_a_program_is_started_not_waited_for(mac: FakeMac) -> None:
    launcher = FakeLauncher(mac)
    pid = await MacBackend(PyObjCAx(), launcher).launch(["/usr/local/bin/editor", "notes.txt"])
    assert launcher.commands == [(["/usr/local/bin/editor", "notes.txt"], False)]
    assert pid == 4242


def test_system_apps_are_installed_apps(macos_apps: Path) -> None:
    from deskloop.screen.desktop_entries import macos_app_folders

    folders = macos_app_folders()
    assert Path("/System/Applications") in folders
    assert Path("/Applications/Utilities") in folders
    assert macos_apps in folders


async def test_the_launcher_does_not_wait_for_a_program() -> None:
    from deskloop.screen.backends.macos.backend import run_command

    started = time.monotonic()
    pid = await run_command(["sleep", "1"], wait=False)
    assert time.monotonic() - started < 1 and pid > 0
    await run_command(["true"], wait=True)
    with pytest.raises(ActionFailedError, match="exit"):
        await run_command(["false"], wait=True)
