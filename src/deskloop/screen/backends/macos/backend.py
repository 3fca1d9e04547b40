"""The macOS backend: reads with `read_window`, acts with AXPress / AXSetValue / AXRaise,
and falls back to CGEvent for keys and pointer input."""

from __future__ import annotations

import asyncio
import io
import shlex
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import PurePosixPath
from typing import Any

from PIL import Image

from deskloop.screen.backend import AppInfo, Target
from deskloop.screen.backends.macos.ax import AX_SUCCESS, AxApi, PyObjCAx
from deskloop.screen.backends.macos.reader import ATTRIBUTES, neutral_role, read_window, window_of
from deskloop.screen.errors import ActionFailedError, AppNotFoundError, StaleElementError
from deskloop.screen.tree import Box, WindowRead

# `open` returns once LaunchServices has started (or found) the app (seconds).
OPEN_TIMEOUT_S = 20.0
# How long `launch` looks for the started app's pid, and how often (seconds).
FIND_STARTED_S = 5.0
FIND_INTERVAL_S = 0.2

# Runs a command and returns its pid: (argv, wait for it to exit?).
Launcher = Callable[[list[str], bool], Awaitable[int]]

_started: list[subprocess.Popen[bytes]] = []


async def run_command(argv: list[str], wait: bool) -> int:
    """Start `argv`; with `wait`, until it exits (raising when it fails). Returns its pid."""
    if not wait:
        _started[:] = [process for process in _started if process.poll() is None]  # reap
        try:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )
        except OSError as exc:
            raise ActionFailedError(f"cannot start {argv[0]!r}: {exc.strerror}") from exc
        _started.append(process)  # a program the user now owns: never killed, only reaped
        return process.pid
    try:
        child = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
    except OSError as exc:
        raise ActionFailedError(f"cannot start {argv[0]!r}: {exc.strerror}") from exc
    try:
        _, errors = await asyncio.wait_for(child.communicate(), OPEN_TIMEOUT_S)
    except TimeoutError:
        child.kill()
        await child.wait()
        raise ActionFailedError(
            f"{shlex.join(argv)} did not finish within {OPEN_TIMEOUT_S:.0f} s"
        ) from None
    if child.returncode != 0:
        said = errors.decode(errors="replace").strip()
        raise ActionFailedError(f"{shlex.join(argv)} failed (exit {child.returncode}): {said}")
    return child.pid


def _app_name(target: str) -> str:
    return PurePosixPath(target.rstrip("/")).name.removesuffix(".app")


def launch_plan(command: list[str]) -> tuple[list[str], bool, str | None]:
    """How to start `command`: (argv, wait for it, name of the app to find the pid of).

    A bare name or an `.app` bundle opens through LaunchServices (`open -a`, extra words
    passed on after --args); an `open` command runs as given; any other path is a program.
    """
    first, rest = command[0], command[1:]
    if first == "open":
        named = command.index("-a") + 1 if "-a" in command else 0
        return command, True, _app_name(command[named]) if 0 < named < len(command) else None
    if "/" not in first or first.rstrip("/").endswith(".app"):
        target = first.rstrip("/") if "/" in first else first
        argv = ["open", "-a", target, *(["--args", *rest] if rest else [])]
        return argv, True, _app_name(target)
    return command, False, None


class MacBackend:
    """macOS through the `AxApi` calls (pyobjc for real, a fake in tests)."""

    name = "macos"

    def __init__(self, ax: AxApi, launcher: Launcher = run_command) -> None:
        self.ax = ax
        self.launcher = launcher
        self.elements: dict[tuple[int, str], Any] = {}

    @classmethod
    def create(cls) -> MacBackend:
        return cls(PyObjCAx())

    async def close(self) -> None:
        self.elements.clear()

    async def list_apps(self) -> list[AppInfo]:
        return [AppInfo(name, pid) for name, pid in self.ax.running_apps()]

    def _find(self, target: Target) -> AppInfo:
        apps = [AppInfo(name, pid) for name, pid in self.ax.running_apps()]
        if target.pid is not None:
            matches = [app for app in apps if app.pid == target.pid]
        elif target.app is not None:
            wanted = target.app.lower()
            matches = [a for a in apps if a.name.lower() == wanted] or [
                a for a in apps if wanted in a.name.lower()
            ]
        else:
            front = self.ax.frontmost_pid()
            matches = [app for app in apps if app.pid == front]
        if not matches:
            listed = ", ".join(sorted(app.name for app in apps)) or "none"
            raise AppNotFoundError(
                f"no application matches {target.describe()}. Running apps: {listed}. "
                "Use open_app to start it"
            )
        return matches[0]

    async def read(self, target: Target) -> WindowRead:
        app = self._find(target)
        # Thousands of AX calls (each a message to the app): off the event loop. AX calls
        # may come from any thread; the app list above is read here, where the run loop is.
        read, elements = await asyncio.to_thread(read_window, self.ax, app.name, app.pid)
        self.elements = {key: value for key, value in self.elements.items() if key[0] != app.pid}
        self.elements.update({(app.pid, ref): element for ref, element in elements.items()})
        return read

    async def fingerprint(self, pid: int) -> int | None:
        return None  # AX has no cheap digest: the settle rule reads the tree again

    def _element(self, pid: int, ref: str) -> Any:
        element = self.elements.get((pid, ref))
        if element is None:
            raise StaleElementError("stale id: the element is gone: observe again")
        return element

    async def identity(self, pid: int, ref: str) -> tuple[str, str]:
        attributes = self.ax.copy_attributes(self._element(pid, ref), ATTRIBUTES)
        if not attributes:
            raise StaleElementError("stale id: the element no longer answers: observe again")
        name = str(attributes.get("AXTitle") or attributes.get("AXDescription") or "")
        role = neutral_role(attributes)
        if role == "label" and not name and attributes.get("AXValue") is not None:
            name = str(attributes["AXValue"])
        return role, name

    async def press(self, pid: int, ref: str) -> bool:
        return self.ax.perform_action(self._element(pid, ref), "AXPress") == AX_SUCCESS

    async def focus_element(self, pid: int, ref: str) -> bool:
        return self.ax.set_attribute(self._element(pid, ref), "AXFocused", True) == AX_SUCCESS

    async def insert_text(self, pid: int, ref: str, text: str) -> bool:
        # Setting the selected text replaces the selection: at a bare caret, an insert.
        element = self._element(pid, ref)
        return self.ax.set_attribute(element, "AXSelectedText", text) == AX_SUCCESS

    async def set_value(self, pid: int, ref: str, value: str) -> bool:
        element = self._element(pid, ref)
        if self.ax.set_attribute(element, "AXValue", value) == AX_SUCCESS:
            return True
        try:
            number = float(value)
        except ValueError:
            return False
        return self.ax.set_attribute(element, "AXValue", number) == AX_SUCCESS

    async def click_at(self, x: int, y: int, button: str, count: int) -> None:
        self.ax.post_click(x, y, button, count)

    async def type_keys(self, text: str) -> None:
        self.ax.post_text(text)

    async def press_keys(self, combo: str) -> None:
        self.ax.post_keys(combo)

    async def scroll_at(self, x: int, y: int, direction: str, amount: int) -> None:
        self.ax.post_scroll(x, y, direction, amount)

    async def focus_window(self, pid: int, title: str = "") -> None:
        self.ax.activate(pid)
        window = window_of(self.ax, self.ax.application(pid))
        if window is None:
            raise ActionFailedError(f"process {pid} has no window to raise: open_app it first")
        self.ax.perform_action(window, "AXRaise")

    async def launch(self, command: list[str]) -> int:
        argv, wait, app_name = launch_plan(command)
        pid = await self.launcher(argv, wait)
        if not wait:
            return pid
        if app_name is None:
            return 0  # `open` without -a: the pid of `open` is not the app's
        return await self._started_pid(app_name)

    async def _started_pid(self, app_name: str) -> int:
        """The pid of the app `open` started, once it shows in the app list (0: not yet)."""
        wanted = app_name.lower()
        deadline = time.monotonic() + FIND_STARTED_S
        while True:
            for name, pid in self.ax.running_apps():
                if name.lower() == wanted:
                    return pid
            if time.monotonic() >= deadline:
                return 0
            await asyncio.sleep(FIND_INTERVAL_S)

    async def capture(self, box: Box | None) -> Image.Image:
        # The whole screen is the main display, whose origin is (0, 0) by definition, so the
        # box the caller assumes is right; other displays are reached with a box.
        area = self.ax.screen_box() if box is None else (box.x, box.y, box.width, box.height)
        png = await asyncio.to_thread(self.ax.capture_png, area)
        image = Image.open(io.BytesIO(png)).convert("RGB")
        size = (area[2], area[3])
        if image.size != size:  # backing pixels (2x on Retina) back to points
            image = image.resize(size, Image.Resampling.LANCZOS)
        return image
