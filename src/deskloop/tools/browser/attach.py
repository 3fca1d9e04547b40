"""Which browser to attach to, in the issue's order: a running one, one deskloop starts, advice.

Chrome 136+ ignores `--remote-debugging-port` on the default profile; Chrome 144+ lets
the user allow remote debugging of the running browser at chrome://inspect/#remote-debugging,
and then writes `DevToolsActivePort` (port, then WebSocket path) in its user-data directory.
That endpoint has no HTTP `/json` routes: a client connects to ws://127.0.0.1:<port><path>.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from deskloop.errors import DeskloopError
from deskloop.settings import BrowserSettings, Paths

PORT_FILE = "DevToolsActivePort"
OWN_PROFILE = "browser-profile"
INSPECT_PAGE = "chrome://inspect/#remote-debugging"
START_TIMEOUT_S = 30.0
LIVE_PROBE_TIMEOUT_S = 0.5

# User-data directories relative to the config base (Linux: $XDG_CONFIG_HOME or ~/.config).
LINUX_DIRS = (
    ("Chrome", "google-chrome"),
    ("Chrome Beta", "google-chrome-beta"),
    ("Chrome Dev", "google-chrome-unstable"),
    ("Chromium", "chromium"),
    ("Brave", "BraveSoftware/Brave-Browser"),
)
# Snap and Flatpak installs keep theirs under the home directory.
LINUX_SANDBOXED_DIRS = (
    ("Chromium (snap)", "snap/chromium/common/chromium"),
    ("Chrome (flatpak)", ".var/app/com.google.Chrome/config/google-chrome"),
    ("Chromium (flatpak)", ".var/app/org.chromium.Chromium/config/chromium"),
    ("Brave (flatpak)", ".var/app/com.brave.Browser/config/BraveSoftware/Brave-Browser"),
)
MACOS_DIRS = (
    ("Chrome", "Google/Chrome"),
    ("Chrome Beta", "Google/Chrome Beta"),
    ("Chrome Canary", "Google/Chrome Canary"),
    ("Chromium", "Chromium"),
    ("Brave", "BraveSoftware/Brave-Browser"),
)
LINUX_EXECUTABLES = (
    "google-chrome", "google-chrome-stable", "chromium", "chromium-browser", "brave-browser",
)
MACOS_EXECUTABLES = (
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Brave Browser.app/Contents/MacOS/Brave Browser",
)


class BrowserAttachError(DeskloopError):
    """No browser could be attached; the message says what the user can do."""


@dataclass(frozen=True)
class UserDataDir:
    """A browser's user-data directory, where `DevToolsActivePort` appears."""

    browser: str
    path: Path


@dataclass(frozen=True)
class DevToolsEndpoint:
    """A live remote-debugging endpoint read from a `DevToolsActivePort` file."""

    browser: str
    user_data_dir: Path
    port: int
    path: str

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.path}"


PortFileState = Literal["live", "stale", "unreadable"]


@dataclass(frozen=True)
class PortFileFinding:
    """What one `DevToolsActivePort` file says: a live endpoint, a stale port, or garbage."""

    where: UserDataDir
    state: PortFileState
    detail: str
    endpoint: DevToolsEndpoint | None = None


def own_profile(paths: Paths) -> Path:
    """Route 2's profile: kept between sessions so logins made there persist."""
    return paths.data_dir / OWN_PROFILE


def standard_user_data_dirs(
    platform: str | None = None, home: Path | None = None, environ: Mapping[str, str] | None = None
) -> list[UserDataDir]:
    """The user-data directories Chrome, Chromium and Brave use by default on this platform."""
    platform = platform or sys.platform
    home = home or Path.home()
    environ = os.environ if environ is None else environ
    if platform == "darwin":
        support = home / "Library" / "Application Support"
        return [UserDataDir(name, support / relative) for name, relative in MACOS_DIRS]
    config = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    found = [UserDataDir(name, config / relative) for name, relative in LINUX_DIRS]
    found += [UserDataDir(name, home / relative) for name, relative in LINUX_SANDBOXED_DIRS]
    return found


def user_data_dirs(settings: BrowserSettings, paths: Paths) -> list[UserDataDir]:
    """Where to look, in order: the configured directory, the standard ones, deskloop's own."""
    dirs = []
    if settings.user_data_dir:
        dirs.append(UserDataDir("configured", Path(settings.user_data_dir).expanduser()))
    dirs += standard_user_data_dirs()
    dirs.append(UserDataDir("deskloop's own", own_profile(paths)))
    return dirs


def port_is_live(port: int, timeout: float = LIVE_PROBE_TIMEOUT_S) -> bool:
    """Whether something listens on 127.0.0.1:`port` (a crashed browser leaves its file)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def read_port_file(where: UserDataDir) -> PortFileFinding | None:
    """The finding for `where`'s `DevToolsActivePort`, or None when it has none."""
    file = where.path / PORT_FILE
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        return PortFileFinding(where, "unreadable", f"{file} could not be read: {exc}")
    if len(lines) < 2 or not lines[0].strip().isdigit() or not lines[1].startswith("/"):
        return PortFileFinding(
            where, "unreadable", f"{file} is not two lines (a port, then a /devtools/ path)"
        )
    port = int(lines[0])
    if not 0 < port < 65536 or not port_is_live(port):
        return PortFileFinding(
            where, "stale",
            f"{file} names port {port}, where nothing listens: the browser that wrote it "
            "has quit or crashed",
        )
    endpoint = DevToolsEndpoint(where.browser, where.path, port, lines[1].strip())
    return PortFileFinding(where, "live", f"{where.browser} at {where.path}, port {port}", endpoint)


def find_port_files(dirs: list[UserDataDir]) -> list[PortFileFinding]:
    """Every `DevToolsActivePort` among `dirs`, live ones first in the order given."""
    findings = [finding for where in dirs if (finding := read_port_file(where)) is not None]
    return sorted(findings, key=lambda finding: finding.state != "live")


def browser_executable(settings: BrowserSettings, platform: str | None = None) -> str | None:
    """The browser route 2 starts: the configured one, else the first installed."""
    if settings.executable:
        return shutil.which(settings.executable) or (
            settings.executable if Path(settings.executable).is_file() else None
        )
    if (platform or sys.platform) == "darwin":
        return next((path for path in MACOS_EXECUTABLES if Path(path).is_file()), None)
    return next((found for name in LINUX_EXECUTABLES if (found := shutil.which(name))), None)


def start_command(executable: str, profile: Path, settings: BrowserSettings) -> list[str]:
    return [
        executable,
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        "--no-first-run",
        "--no-default-browser-check",
        *settings.arguments,
    ]


async def start_own_browser(
    settings: BrowserSettings, paths: Paths
) -> tuple[DevToolsEndpoint, subprocess.Popen[bytes]]:
    """Route 2: start the browser on deskloop's profile and read its DevToolsActivePort."""
    executable = browser_executable(settings)
    if executable is None:
        raise BrowserAttachError(
            "no Chrome, Chromium or Brave found to start: install one, or name it with "
            "`deskloop config set browser.executable /path/to/chrome`"
        )
    profile = own_profile(paths)
    profile.mkdir(parents=True, exist_ok=True)
    (profile / PORT_FILE).unlink(missing_ok=True)  # a stale one would be read as new
    process = subprocess.Popen(
        start_command(executable, profile, settings),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # The browser is the user's window: it outlives the session that started it.
        start_new_session=True,
    )
    where = UserDataDir("deskloop's own", profile)
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
    while asyncio.get_running_loop().time() < deadline:
        finding = read_port_file(where)
        if finding is not None and finding.endpoint is not None:
            return finding.endpoint, process
        if process.poll() is not None:
            raise BrowserAttachError(
                f"{executable} exited with status {process.returncode} before it opened "
                f"its debugging port; try starting it by hand: "
                f"{' '.join(start_command(executable, profile, settings))}"
            )
        await asyncio.sleep(0.1)
    process.terminate()
    raise BrowserAttachError(
        f"{executable} did not write {PORT_FILE} in {profile} within {START_TIMEOUT_S:.0f} s"
    )


def explain_no_browser(findings: list[PortFileFinding], settings: BrowserSettings) -> str:
    """Route 3: what the user can do, after what was found."""
    seen = "; ".join(f.detail for f in findings) or "no browser has remote debugging on"
    executable = browser_executable(settings)
    start = (
        f"let deskloop start {executable} on its own profile (logins made there persist): "
        "call browser_start, which asks the user first, or have the user run "
        "`deskloop config set browser.start_own true`"
        if executable
        else "install Chrome or Chromium so deskloop can start its own"
    )
    return (
        f"no browser to attach to ({seen}). Either (1) the user allows remote debugging of "
        f"their running Chrome 144 or later at {INSPECT_PAGE} (Chrome asks once per "
        "connection; for a browser in another user-data directory set "
        f"`deskloop config set browser.user_data_dir DIR`), or (2) {start}"
    )
