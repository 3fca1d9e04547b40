"""The real pyobjc calls of the macOS backend (`PyObjCAx`), against a fake Mac that behaves as
Apple documents it (tests/screen/fake_macos.py): run loop, UTF-16, backing scale, CFNull."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
from PIL import Image

from deskloop.screen.actions import ScreenSession
from deskloop.screen.backend import Target
from deskloop.screen.backends.macos import ax as ax_module
from deskloop.screen.backends.macos.ax import PyObjCAx
from deskloop.screen.backends.macos.backend import MacBackend
from deskloop.screen.errors import ActionFailedError
from deskloop.screen.tree import Box
from tests.screen.fake_macos import CFNULL, App, FakeMac, Node, Window, install


@pytest.fixture
def mac(monkeypatch: pytest.MonkeyPatch) -> FakeMac:
    return install(monkeypatch)


def textedit(pid: int = 501, node: Node | None = None) -> App:
    return App("TextEdit", pid, "com.apple.TextEdit", [Window("Untitled", (100, 100, 600, 400), node)])


def test_an_app_started_later_is_listed_and_frontmost(mac: FakeMac) -> None:
    ax = PyObjCAx()
    assert [name for name, _ in ax.running_apps()] == ["Finder"]
    mac.add_app(textedit())  # nobody turns the run loop: NSWorkspace still says "Finder only"
    assert ("TextEdit", 501) in ax.running_apps()
    assert ax.frontmost_pid() == 501


async def test_off_the_main_thread_a_new_app_is_still_seen(mac: FakeMac) -> None:
    # The doctor probes in a worker thread, where no run loop turn brings NSWorkspace news.
    ax = PyObjCAx()
    mac.add_app(textedit())
    assert ("TextEdit", 501) in await asyncio.to_thread(ax.running_apps)
    assert await asyncio.to_thread(ax.frontmost_pid) == 501


def test_an_app_that_quit_leaves_the_list(mac: FakeMac) -> None:
    ax = PyObjCAx()
    mac.add_app(textedit())
    assert ("TextEdit", 501) in ax.running_apps()
    mac.quit_app(501)
    assert ("TextEdit", 501) not in ax.running_apps()


def test_emoji_are_typed_whole(mac: FakeMac) -> None:
    PyObjCAx().post_text("ok 😀 👍🏽")
    assert "".join(mac.typed) == "ok 😀 👍🏽"


@pytest.mark.parametrize(("combo", "keycode", "flags"), [
    ("cmd+l", 0x25, "cmd"), ("cmd+r", 0x0F, "cmd"), ("cmd+1", 0x12, "cmd"),
    ("cmd+b", 0x0B, "cmd"), ("ctrl+shift+g", 0x05, "ctrl shift"), ("F12", 0x6F, ""),
    ("cmd+,", 0x2B, "cmd"), ("cmd+[", 0x21, "cmd"), ("alt+y", 0x10, "alt"),
    ("super+w", 0x0D, "cmd"), ("win+e", 0x0E, "cmd"), ("fn+f6", 0x61, "fn"),
    ("delete", 0x75, ""), ("cmd+del", 0x75, "cmd"),
])
def test_shortcuts_reach_their_key_codes(mac: FakeMac, combo: str, keycode: int, flags: str) -> None:
    masks = {"cmd": 1 << 20, "ctrl": 1 << 18, "alt": 1 << 19, "shift": 1 << 17, "fn": 1 << 23}
    PyObjCAx().post_keys(combo)
    assert mac.keys == [(keycode, sum(masks[name] for name in flags.split()))]


def test_an_unknown_modifier_is_refused_not_dropped(mac: FakeMac) -> None:
    with pytest.raises(ActionFailedError, match="hyper"):
        PyObjCAx().post_keys("hyper+w")
    assert mac.keys == []


async def test_a_cfnull_value_and_a_word_for_a_check_box_do_not_abort_the_read(mac: FakeMac) -> None:
    window = Node({"AXRole": "AXWindow", "AXTitle": "Untitled", "AXPosition": (100, 100),
                   "AXSize": (600, 400)}, [
        Node({"AXRole": "AXButton", "AXTitle": "Bold", "AXDescription": CFNULL,
              "AXPosition": (110, 125), "AXSize": (40, 30)}),
        Node({"AXRole": "AXCheckBox", "AXTitle": "Wrap", "AXValue": "on",
              "AXPosition": (160, 125), "AXSize": (60, 30)}),
    ])
    mac.add_app(textedit(node=window))
    read = await MacBackend(PyObjCAx()).read(Target(app="TextEdit"))
    assert [(node.role, node.name) for node in read.nodes] == [
        ("window", "Untitled"), ("button", "Bold"), ("check", "Wrap"),
    ]


async def test_a_window_capture_is_in_points_as_the_scale_says(mac: FakeMac) -> None:
    mac.add_app(textedit())
    session = ScreenSession(MacBackend(PyObjCAx()))
    await session.observe(app="TextEdit")
    _, shot = await session.capture_screenshot(window=True)
    assert (shot.width, shot.height, shot.scale) == (600, 400, 1.0)
    assert shot.box == Box(100, 100, 600, 400)


async def test_a_full_screen_capture_starts_at_the_origin_it_reports(mac: FakeMac) -> None:
    # A second display at negative coordinates must not shift "screen x = 0 + image x".
    session = ScreenSession(MacBackend(PyObjCAx()))
    _, shot = await session.capture_screenshot(window=False)
    assert shot.box == Box(0, 0, 1440, 900)
    assert (shot.width, shot.height) == (1440, 900)


async def test_a_capture_without_screen_recording_says_so(mac: FakeMac) -> None:
    mac.screen_recording = False
    with pytest.raises(ActionFailedError, match="Screen Recording"):
        await MacBackend(PyObjCAx()).capture(Box(100, 100, 600, 400))


async def test_focus_brings_an_app_forward_on_macos_14_and_later(mac: FakeMac) -> None:
    mac.macos_major = 14
    mac.add_app(textedit())
    mac.add_app(App("Notes", 502, "com.apple.Notes", [Window("Notes", (0, 30, 900, 700))]))
    await MacBackend(PyObjCAx()).focus_window(501)
    assert mac.frontmost == 501


async def test_without_cgwindowlistcreateimage_screencapture_takes_the_picture(
    mac: FakeMac, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pyobjc built on the macOS 15 SDK, or a macOS that no longer ships the call.
    monkeypatch.delattr(sys.modules["Quartz"], "CGWindowListCreateImage")
    commands: list[list[str]] = []

    def screencapture(command: list[str], **options: Any) -> subprocess.CompletedProcess[bytes]:
        commands.append(command)
        Image.new("RGB", (1200, 800)).save(command[-1])  # backing pixels, as it writes them
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(ax_module.subprocess, "run", screencapture)
    image = await MacBackend(PyObjCAx()).capture(Box(100, 100, 600, 400))
    assert image.size == (600, 400)
    assert commands[0][:-1] == ["screencapture", "-x", "-t", "png", "-R", "100,100,600,400"]
