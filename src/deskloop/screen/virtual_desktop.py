"""A private virtual desktop: Xvfb, a session bus and real GTK3 apps, torn down cleanly.

`deskloop demo` runs the agent on one when there is no display (or to keep the user's
own screen untouched); the desktop tests and `deskloop bench screen` use it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from deskloop.errors import DeskloopError

# Window placement: no window manager runs, so windows are moved with xdotool to sit
# side by side without overlapping (XTest clicks then land on the intended window).
SCREEN_SIZE = (2400, 1400)
CLIENT_VARIABLES = ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "WAYLAND_DISPLAY")


@dataclass(frozen=True)
class AppSpec:
    """One app to start: its command, the name AT-SPI gives it, and where its window goes."""

    key: str
    command: tuple[str, ...]
    atspi_name: str
    position: tuple[int, int]


TEST_APPS = (
    AppSpec("widget-factory", ("gtk3-widget-factory",), "gtk3-widget-factory", (0, 0)),
    AppSpec("demo", ("gtk3-demo",), "gtk3-demo", (1400, 0)),
    AppSpec("mousepad", ("mousepad", "--disable-server"), "mousepad", (0, 780)),
)


SAMPLE_APP = TEST_APPS[2]  # mousepad: a text editor, the demo's sample app


class DesktopStartError(DeskloopError):
    """The virtual desktop could not start; the message says which part failed."""


@dataclass
class VirtualDesktop:
    """Xvfb + session bus + apps; `env` is what a client needs to reach them."""

    root: Path
    display: str = ""
    bus_address: str = ""
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def start(cls, apps: tuple[AppSpec, ...] = TEST_APPS) -> VirtualDesktop:
        desktop = cls(Path(tempfile.mkdtemp(prefix="deskloop-desktop-")))
        try:
            desktop._start_xvfb()
            desktop._start_session_bus()
            for spec in apps:
                desktop.launch(spec)
            for spec in apps:
                desktop.wait_for_window(spec)
        except BaseException:
            desktop.stop()
            raise
        return desktop

    def _start_xvfb(self) -> None:
        # -displayfd lets Xvfb pick a free display number, so parallel runs never collide.
        read_end, write_end = os.pipe()
        width, height = SCREEN_SIZE
        xvfb = subprocess.Popen(
            [
                "Xvfb",
                "-displayfd",
                str(write_end),
                "-screen",
                "0",
                f"{width}x{height}x24",
                "-nolisten",
                "tcp",
            ],
            pass_fds=(write_end,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(write_end)
        self.processes["xvfb"] = xvfb
        with os.fdopen(read_end, "rb") as reader:
            number = reader.readline().strip().decode()
        if not number:
            raise DesktopStartError("Xvfb did not report a display number (is xvfb installed?)")
        self.display = f":{number}"

    def _start_session_bus(self) -> None:
        runtime = self.root / "runtime"
        runtime.mkdir(mode=0o700)
        home = self.root / "home"
        home.mkdir()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_RUNTIME_DIR": str(runtime),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local/share"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "DISPLAY": self.display,
            "GSETTINGS_BACKEND": "memory",
            "LANG": "C.UTF-8",
        }
        bus = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
        )
        self.processes["bus"] = bus
        assert bus.stdout is not None
        address = bus.stdout.readline().strip().decode()
        if not address:
            raise DesktopStartError("dbus-daemon did not print an address (is dbus installed?)")
        self.bus_address = address
        self.env["DBUS_SESSION_BUS_ADDRESS"] = address

    def launch(self, spec: AppSpec) -> subprocess.Popen[bytes]:
        """Start one app on this desktop; its stderr goes to `log_path(spec.key)`."""
        with self.log_path(spec.key).open("wb") as log:
            process = subprocess.Popen(
                list(spec.command),
                env=self.env,
                cwd=self.root,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        self.processes[spec.key] = process
        self.pids[spec.key] = process.pid
        return process

    def log_path(self, key: str) -> Path:
        return self.root / f"{key}.log"

    def log_tail(self, key: str, limit: int = 600) -> str:
        """The end of what an app wrote to stderr, for error messages."""
        try:
            text = self.log_path(key).read_text(errors="replace").strip()
        except OSError:
            return "(no log)"
        return text[-limit:] or "(nothing)"

    def focus(self, spec: AppSpec) -> None:
        """Give the app's window the keyboard focus (no window manager does it here)."""
        window = self.wait_for_window(spec)
        self.xdotool("windowfocus", "--sync", window)

    def xdotool(self, *args: str) -> str:
        result = subprocess.run(
            ["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=10
        )
        return result.stdout.strip()

    def wait_for_window(self, spec: AppSpec, timeout: float = 30.0) -> str:
        """Wait until the app maps a window, then move it to its place; returns the X id."""
        deadline = time.monotonic() + timeout
        pid = self.pids[spec.key]
        while time.monotonic() < deadline:
            windows = self.xdotool("search", "--onlyvisible", "--pid", str(pid))
            if windows:
                window = windows.splitlines()[0]
                x, y = spec.position
                self.xdotool("windowmove", "--sync", window, str(x), str(y))
                return window
            if self.processes[spec.key].poll() is not None:
                raise DesktopStartError(
                    f"{spec.key} exited before showing a window; it said: {self.log_tail(spec.key)}"
                )
            time.sleep(0.1)
        raise DesktopStartError(f"{spec.key} showed no window within {timeout:.0f} s")

    @contextmanager
    def environment(self) -> Iterator[None]:
        """This process's DISPLAY and session bus pointed at the desktop, for a while."""
        saved = {name: os.environ.get(name) for name in CLIENT_VARIABLES}
        os.environ["DISPLAY"] = self.display
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = self.bus_address
        os.environ.pop("WAYLAND_DISPLAY", None)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def wait_for_trees(
        self, apps: tuple[AppSpec, ...] = TEST_APPS, timeout: float = 30, min_nodes: int = 6
    ) -> None:
        """Wait until every app's window gives a non-degraded tree of at least `min_nodes`."""
        from deskloop.screen.backend import Target
        from deskloop.screen.backends.atspi.backend import AtspiBackend
        from deskloop.screen.errors import ScreenError

        async def poll() -> None:
            backend = await AtspiBackend.connect()
            try:
                deadline = time.monotonic() + timeout
                for spec in apps:
                    while True:
                        try:
                            read = await backend.read(Target(pid=self.pids[spec.key]))
                            if read.degraded is None and len(read.nodes) >= min_nodes:
                                break
                        except ScreenError:
                            pass
                        if time.monotonic() > deadline:
                            raise DesktopStartError(f"{spec.key} gave no accessibility tree")
                        await asyncio.sleep(0.1)
            finally:
                await backend.close()

        with self.environment():
            asyncio.run(poll())

    def stop_app(self, key: str) -> None:
        """Stop one process this desktop started, with everything it spawned."""
        process = self.processes.pop(key, None)
        if process is None:
            return
        # Each process leads its own session; its group holds what it spawned
        # (the bus's group holds the activated at-spi launcher and registry).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()

    def stop(self) -> None:
        """Stop every process this desktop started (apps first, Xvfb last), then clean up."""
        order = [key for key in self.processes if key not in ("bus", "xvfb")] + ["bus", "xvfb"]
        for key in order:
            self.stop_app(key)
        shutil.rmtree(self.root, ignore_errors=True)
