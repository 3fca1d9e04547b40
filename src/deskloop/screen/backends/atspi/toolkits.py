"""What each toolkit needs before it exposes a tree over AT-SPI, and how deskloop gives it.

Measured on Debian 12 under Xvfb (SCREEN-NOTES.md): GTK3 and GTK4 need nothing; Qt 6
registers once `org.a11y.Status.IsEnabled` turns true, even while running, or at start with
QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1; Chromium 156 reads IsEnabled (or ACCESSIBILITY_ENABLED=1)
only at start, and without --force-renderer-accessibility its window stays empty, browser
buttons included.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dbus_fast import Variant
from dbus_fast.aio import MessageBus

from deskloop.screen.backends.atspi import constants as c
from deskloop.screen.backends.atspi.connection import A11Y_BUS_NAME, A11Y_BUS_PATH, Caller

QT_SWITCH = "QT_LINUX_ACCESSIBILITY_ALWAYS_ON"
CHROMIUM_SWITCH = "--force-renderer-accessibility"
# Program names of Chromium-based browsers and of Electron itself; other Electron apps
# need the flag passed by hand (open_app "code --force-renderer-accessibility").
CHROMIUM_PROGRAMS = frozenset({
    "chromium", "chromium-browser", "chrome", "google-chrome", "google-chrome-stable",
    "microsoft-edge", "brave-browser", "vivaldi", "opera", "electron",
})

NO_TREE_FIXES = {
    "Qt": "Qt apps need QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1 at start, or "
    "org.a11y.Status.IsEnabled true (deskloop sets it when it connects)",
    "Chromium": "Chromium and Electron apps expose their window only when started with "
    "--force-renderer-accessibility after accessibility was enabled: quit it and open_app it "
    "again (deskloop adds the flag to Chromium browsers)",
    "GTK": "GTK 4 apps register late or not at all (gtk4-widget-factory 4.8 never does)",
}
GENERIC_FIX = (
    "Qt apps need QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1, Chromium and Electron need "
    "--force-renderer-accessibility, Java needs the ATK wrapper; a freshly started app may "
    "need a moment"
)


def no_tree_reason(toolkit: str) -> str:
    """Why a window showed no elements, with the fix for the app's toolkit."""
    fix = NO_TREE_FIXES.get(toolkit, GENERIC_FIX)
    made_with = f" ({toolkit})" if toolkit else ""
    return (
        f"the app{made_with} shows a window but exposes no elements in it. {fix}. "
        "Use capture_screenshot to see it meanwhile"
    )


def not_registered_reason(app: str) -> str:
    """Why an app with a window on screen is missing from the accessibility bus."""
    return (
        f"{app} shows a window but is not on the accessibility bus. A freshly started app may "
        "need a moment; GTK 4 apps may never register (gtk4-widget-factory 4.8 does not); "
        "Qt apps need QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1, Chromium and Electron "
        "--force-renderer-accessibility; NO_AT_BRIDGE=1 hides GTK 3 apps. "
        "Use capture_screenshot to see it meanwhile"
    )


def process_name(pid: int) -> str:
    """The program name of a process (its argv[0] without the folder; comm is cut at 15)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return f"pid {pid}"
    return os.path.basename(argv0.decode(errors="replace")) or f"pid {pid}"


def accessible_launch(
    command: list[str], environ: Mapping[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """The command and environment that make a newly started app expose its tree."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault(QT_SWITCH, "1")
    program = os.path.basename(command[0]) if command else ""
    if program in CHROMIUM_PROGRAMS and CHROMIUM_SWITCH not in command:
        command = [command[0], CHROMIUM_SWITCH, *command[1:]]
    return command, env


async def accessibility_enabled(session: MessageBus) -> bool:
    """`org.a11y.Status.IsEnabled`: whether assistive technology is announced as running."""
    caller = Caller(session, A11Y_BUS_NAME)
    return bool(await caller.get_property(A11Y_BUS_PATH, c.STATUS, "IsEnabled"))


async def enable_accessibility(session: MessageBus) -> None:
    """Announce an assistive technology, as a screen reader does: Qt apps then register, and
    Chromium apps started afterwards too. GNOME keeps it in the toolkit-accessibility key."""
    caller = Caller(session, A11Y_BUS_NAME)
    await caller.call(
        A11Y_BUS_PATH, c.PROPERTIES, "Set", "ssv", (c.STATUS, "IsEnabled", Variant("b", True))
    )
