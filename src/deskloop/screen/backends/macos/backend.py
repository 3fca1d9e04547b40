"""The macOS backend: reads with `read_window`, acts with AXPress / AXSetValue / AXRaise,
and falls back to CGEvent for keys and pointer input."""

from __future__ import annotations

import io
import subprocess
from typing import Any

from PIL import Image

from deskloop.screen.backend import AppInfo, Target
from deskloop.screen.backends.macos.ax import AX_SUCCESS, AxApi, PyObjCAx
from deskloop.screen.backends.macos.reader import ATTRIBUTES, neutral_role, read_window, window_of
from deskloop.screen.errors import ActionFailedError, AppNotFoundError, StaleElementError
from deskloop.screen.tree import Box, WindowRead


class MacBackend:
    """macOS through the `AxApi` calls (pyobjc for real, a fake in tests)."""

    name = "macos"

    def __init__(self, ax: AxApi) -> None:
        self.ax = ax
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
        read, elements = read_window(self.ax, app.name, app.pid)
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
        # `open -a Name` starts an app bundle by name; anything else runs as given.
        argv = command if "/" in command[0] else ["open", "-a", *command]
        try:
            subprocess.run(argv, check=True, capture_output=True, timeout=20)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ActionFailedError(f"cannot start {command[0]!r}: {exc}") from exc
        name = command[0].rsplit("/", 1)[-1].removesuffix(".app").lower()
        for app_name, pid in self.ax.running_apps():
            if app_name.lower() == name:
                return pid
        return 0

    async def capture(self, box: Box | None) -> Image.Image:
        area = None if box is None else (box.x, box.y, box.width, box.height)
        return Image.open(io.BytesIO(self.ax.capture_png(area))).convert("RGB")
