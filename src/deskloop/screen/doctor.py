"""`deskloop doctor`: can the agent see the screen and act on it here? Each failure has a fix.

Exit code: 0 sees and acts, 1 cannot see, 2 sees but cannot act. The same report, as
data, feeds the agent's `check_permission_status` tool.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from deskloop.screen.backends.macos.ax import AxApi
    from deskloop.screen.backends.macos.probe import ProbeResult, RealCall

Status = Literal["ok", "warn", "fail"]
MARKS = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}


@dataclass(frozen=True)
class Check:
    """One probe: what it looked at, what it found, and the fix when it is not ok."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    needed_to: Literal["see", "act", "both"] = "see"


@dataclass
class DoctorReport:
    """All checks of one run, with the two verdicts the agent cares about."""

    platform: str
    checks: list[Check] = field(default_factory=list)
    verdict: str = ""

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    def _passes(self, purpose: str) -> bool:
        return not any(
            check.status == "fail" and check.needed_to in (purpose, "both") for check in self.checks
        )

    @property
    def can_see(self) -> bool:
        return self._passes("see")

    @property
    def can_act(self) -> bool:
        return self.can_see and self._passes("act")

    @property
    def exit_code(self) -> int:
        if not self.can_see:
            return 1
        return 0 if self.can_act else 2

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "can_see": self.can_see,
            "can_act": self.can_act,
            "verdict": self.verdict,
            "checks": [check.__dict__ for check in self.checks],
        }

    def render(self) -> str:
        lines = []
        for check in self.checks:
            lines.append(f"[{MARKS[check.status]}] {check.name}: {check.detail}")
            if check.status != "ok" and check.fix:
                lines.append(f"       fix: {check.fix}")
        see = "yes" if self.can_see else "no"
        act = "yes" if self.can_act else "no"
        lines.append(f"can see the screen: {see}; can act on it: {act}")
        if self.verdict:
            lines.append(self.verdict)
        return "\n".join(lines)


# Checks other parts add to `deskloop doctor`, by `module:function` (returning list[Check]),
# so the screen package imports none of them.
EXTRA_CHECKS = (
    "deskloop.tools.browser.doctor:browser_checks",
    "deskloop.agent.resident_server:doctor_checks",
)


def add_extra_checks(report: DoctorReport) -> None:
    for target in EXTRA_CHECKS:
        module_name, _, function_name = target.partition(":")
        checks = getattr(importlib.import_module(module_name), function_name)()
        report.checks.extend(checks)


async def run_doctor() -> DoctorReport:
    """Run the probe for this platform."""
    platform: str = sys.platform
    if platform == "darwin":
        # The probe blocks (AX calls of up to 0.5 s each, a pause between its re-checks).
        return await asyncio.to_thread(macos_checks)
    if platform.startswith("linux"):
        return await linux_checks()
    report = DoctorReport(platform)
    report.add(Check("platform", "fail", f"{platform} has no screen backend yet",
                     "use Linux (AT-SPI) or macOS (AX)", "both"))
    return report


def _display_check(report: DoctorReport) -> bool:
    wayland = os.environ.get("WAYLAND_DISPLAY", "")
    display = os.environ.get("DISPLAY", "")
    if not display:
        fix = "run deskloop in your desktop session, or set DISPLAY (e.g. DISPLAY=:0)"
        if wayland:
            detail = (f"Wayland ({wayland}) without XWayland: no global coordinates and no "
                      "synthetic input")
            report.add(Check("display", "fail", detail, fix, "act"))
        else:
            report.add(Check("display", "fail", "no display: DISPLAY is not set", fix, "act"))
        return False
    from deskloop.screen.backends.x11 import X11Display
    from deskloop.screen.errors import ScreenError

    try:
        x11 = X11Display()
    except ScreenError as exc:
        report.add(Check("display", "fail", str(exc), "check that DISPLAY names a running X "
                         "server (xdpyinfo should work)", "act"))
        return False
    box = x11.screen_box
    kind = f"XWayland {display} under Wayland" if wayland else f"X11 {display}"
    report.add(Check("display", "ok", f"{kind}, {box.width}x{box.height}", needed_to="act"))
    if x11.has_xtest:
        report.add(Check("synthetic input", "ok", "XTest available", needed_to="act"))
    else:
        report.add(Check("synthetic input", "fail", "the X server has no XTest extension",
                         "enable XTEST in the X server configuration", "act"))
    # `deskloop record` hears the pointer and keys through RECORD (backends/atspi/x_input.py).
    if x11.display.has_extension("RECORD"):
        report.add(Check("recording", "ok", "the X RECORD extension hears the pointer and keys"))
    else:
        report.add(Check("recording", "warn", "the X server has no RECORD extension, so "
                         "`deskloop record` cannot hear the pointer and keys",
                         "enable RECORD in the X server (Xorg loads it by default; Xvfb: "
                         "+extension RECORD)"))
    _screenshot_check(report, x11, box)
    x11.close()
    return True


def _screenshot_check(report: DoctorReport, x11: Any, box: Any) -> None:
    """A real capture of a corner of the screen: what `capture_screenshot` will need."""
    from deskloop.screen.tree import Box

    try:
        x11.capture(Box(box.x, box.y, min(box.width, 8), min(box.height, 8)))
    except Exception as exc:  # any X error: the check reports it, the doctor goes on
        report.add(Check("screenshot", "warn", f"the X server refused a capture: {exc}",
                         "run deskloop in the desktop session that owns the display"))
        return
    report.add(Check("screenshot", "ok", "the X server returns pixels"))


async def linux_checks() -> DoctorReport:
    """Display, session bus, accessibility bus, IsEnabled, registry, apps, a real read, input."""
    from deskloop.screen.backend import Target
    from deskloop.screen.backends.atspi.backend import AtspiBackend
    from deskloop.screen.backends.atspi.connection import (
        HOST_CONFIG_FIX,
        connect_session_bus,
        root_window_bus_address,
    )
    from deskloop.screen.errors import ScreenError

    report = DoctorReport("linux")
    _display_check(report)
    try:
        session = await connect_session_bus()
    except ScreenError as exc:
        from_root = root_window_bus_address()
        if from_root is None:
            fix = f"{HOST_CONFIG_FIX}; or start a bus: `dbus-run-session -- deskloop doctor`"
            report.add(Check("session bus", "fail", str(exc), fix, "both"))
            return report
        # libatspi's own second way: the bus launcher's address on the X root window.
        report.add(Check(
            "session bus", "warn",
            f"{exc}; the accessibility bus was found on the X root window (AT_SPI_BUS) instead",
            "Qt and Chromium apps need org.a11y.Status.IsEnabled, set over the session bus: "
            "run inside the desktop session to have deskloop turn it on",
        ))
        report.add(Check("accessibility bus", "ok", from_root.split(",")[0], needed_to="both"))
        session = None
    if session is not None:
        report.add(Check("session bus", "ok", "connected", needed_to="both"))
        if not await _accessibility_bus_checks(report, session):
            return report
    try:
        backend = await AtspiBackend.connect(enable=False)  # a probe looks, it changes nothing
    except ScreenError as exc:
        report.add(Check("registry", "fail", str(exc), "apt-get install at-spi2-core", "both"))
        return report
    try:
        apps = await backend.list_apps()
        report.add(Check("registry", "ok", "the AT-SPI registry answers", needed_to="both"))
        if apps:
            names = ", ".join(sorted({app.name for app in apps})[:8])
            report.add(Check("apps listed", "ok", f"{len(apps)}: {names}"))
        else:
            report.add(Check("apps listed", "warn", "no application is in the tree",
                             "start an app; GTK needs no setup, Qt needs "
                             "QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1, Chromium "
                             "--force-renderer-accessibility"))
        await _focused_read_check(report, backend, Target(), ScreenError)
    finally:
        await backend.close()
    return report


async def _accessibility_bus_checks(report: DoctorReport, session: Any) -> bool:
    """The accessibility bus from the session bus, and IsEnabled; False when it is missing."""
    from deskloop.screen.backends.atspi.connection import accessibility_bus_address
    from deskloop.screen.backends.atspi.toolkits import accessibility_enabled
    from deskloop.screen.errors import ScreenError

    try:
        address = await accessibility_bus_address(session)
        report.add(Check("accessibility bus", "ok", address.split(",")[0], needed_to="both"))
        if await accessibility_enabled(session):
            report.add(Check("accessibility enabled", "ok", "org.a11y.Status.IsEnabled is true"))
        else:
            report.add(Check(
                "accessibility enabled", "warn",
                "org.a11y.Status.IsEnabled is false: GTK apps answer, but Qt apps and "
                "Chromium/Electron apps stay off the accessibility tree until it is true. The "
                "agent turns it on when it starts, as a screen reader does; Chromium and "
                "Electron apps started before that need a restart (open_app adds their "
                "--force-renderer-accessibility)",
                "gsettings set org.gnome.desktop.interface toolkit-accessibility true "
                "(or export QT_LINUX_ACCESSIBILITY_ALWAYS_ON=1 before starting Qt apps)",
            ))
    except ScreenError as exc:
        report.add(Check("accessibility bus", "fail", str(exc),
                         "apt-get install at-spi2-core, then log in again", "both"))
        return False
    finally:
        session.disconnect()
    return True


async def _focused_read_check(
    report: DoctorReport, backend: Any, target: Any, error_type: type[Exception]
) -> None:
    try:
        read = await backend.read(target)
    except error_type as exc:
        report.add(Check("read of the focused app", "warn", str(exc),
                         "focus a window (click it) and run doctor again"))
        return
    if read.degraded:
        report.add(Check("read of the focused app", "warn",
                         f"{read.app}: degraded: {read.degraded}", "see the reason"))
    else:
        report.add(Check("read of the focused app", "ok",
                         f"{read.app}: {len(read.nodes)} elements in {read.title!r}"))


# macOS: the four-step Accessibility probe (screen/backends/macos/probe.py) finds, this words.
MACOS_ACCESSIBILITY_PANE = "System Settings > Privacy & Security > Accessibility"
MACOS_GRANT_FIX = (
    f"open {MACOS_ACCESSIBILITY_PANE} and turn on deskloop (or the terminal app that runs it); "
    "if it is on already, quit and reopen deskloop"
)
MACOS_REOPEN_FIX = (
    "quit and reopen deskloop (and the terminal app that runs it): macOS gives a grant to "
    "the processes started after it"
)
# One (status, message, fix) per probe verdict; {pid}, {code} and {front} tell step 2's call.
MACOS_VERDICTS: dict[str, tuple[Status, str, str]] = {
    "working": ("ok", "accessibility works: a real call was answered", ""),
    "app without accessibility": (
        "ok",
        "accessibility works; the frontmost app (pid {pid}) does not answer accessibility "
        "calls ({code}) while Finder does: that app shows no tree, use capture_screenshot for it",
        "",
    ),
    "not granted": ("fail", "accessibility is not granted to deskloop", MACOS_GRANT_FIX),
    "revoked": (
        "fail",
        "accessibility was granted before and is off now: the live permission database says no",
        f"turn deskloop (or the terminal app that runs it) on again in {MACOS_ACCESSIBILITY_PANE}; "
        "if it shows as on, remove it with - and add it again (an update or a re-sign makes "
        "it a new app to macOS)",
    ),
    "granted but not working": (
        "fail",
        "accessibility is granted but not working yet: the live permission database says yes, "
        "this process's calls fail",
        MACOS_REOPEN_FIX,
    ),
    "refused despite trust": (
        "fail",
        "macOS says accessibility is granted, but its calls fail",
        f"{MACOS_REOPEN_FIX}; if it still fails, remove deskloop (or its terminal app) from "
        f"{MACOS_ACCESSIBILITY_PANE} with - and add it again",
    ),
    "unconfirmed": (
        "warn",
        "accessibility unconfirmed: {front}, and Finder, the app to cross-check with, is not "
        "running",
        "open Finder, then run deskloop doctor again",
    ),
}
INPUT_MONITORING_FIX = (
    "open System Settings > Privacy & Security > Input Monitoring, turn on deskloop (or the "
    "terminal app that runs it), then quit and reopen deskloop"
)


def macos_checks(ax: AxApi | None = None, marker: Path | None = None) -> DoctorReport:
    """The four-step Accessibility probe, then Screen Recording and Input Monitoring."""
    from deskloop.screen.backends.macos.ax import PyObjCAx
    from deskloop.screen.backends.macos.probe import probe_and_remember
    from deskloop.screen.errors import ScreenUnavailableError

    report = DoctorReport("macos")
    try:
        api = ax or PyObjCAx()
    except ScreenUnavailableError as exc:
        report.add(Check("pyobjc", "fail", str(exc), "pip install 'deskloop[macos]'", "both"))
        report.verdict = f"{exc}"
        return report
    result = probe_and_remember(api, marker)
    report.checks.extend(macos_probe_steps(result))
    status, message, fix = macos_verdict(result)
    report.add(Check("accessibility", status, message, fix, "both"))
    report.verdict = f"{message}. Fix: {fix}" if fix else message
    report.add(_screen_recording_check(api))
    report.add(_input_monitoring_check(api))
    return report


def _call_words(call: RealCall) -> str:
    from deskloop.screen.backends.macos.ax import describe_ax_error

    return describe_ax_error(call.code) if call.code is not None else "no call"


def macos_verdict(result: ProbeResult) -> tuple[Status, str, str]:
    """(status, message, fix) of the probe's verdict."""
    status, message, fix = MACOS_VERDICTS[result.verdict]
    front = result.frontmost
    code = _call_words(front)
    told = "no app is in front"
    if front.pid is not None:
        told = f"the frontmost app (pid {front.pid}) answered {code}"
    return status, message.format(pid=front.pid, code=code, front=told), fix


def macos_probe_steps(result: ProbeResult) -> list[Check]:
    """What each step that ran found, and which permission it speaks for; the fix is the
    verdict's alone, so no step contradicts it."""
    answer = "yes" if result.trusted else "no"
    steps = [Check("trust flag", "ok" if result.trusted else "warn",
                   f"AXIsProcessTrusted() says {answer}: this process's cached answer, "
                   "decided by the real calls below", needed_to="both")]
    front = result.frontmost
    if front.pid is None:
        steps.append(Check("real call", "warn", "no frontmost app to ask: Finder is asked instead",
                           needed_to="both"))
    else:
        verb = "answered" if front.answered else "did not answer"
        steps.append(Check("real call", "ok" if front.answered else "warn",
                           f"the frontmost app (pid {front.pid}) {verb} AXFocusedWindow: "
                           f"{_call_words(front)}", needed_to="both"))
    finder = result.finder
    if finder is not None and finder.pid is None:
        steps.append(Check("Finder cross-check", "warn", "Finder is not running", needed_to="both"))
    elif finder is not None:
        verb = "answered" if finder.answered else "did not answer either"
        steps.append(Check("Finder cross-check", "ok" if finder.answered else "warn",
                           f"Finder (pid {finder.pid}) {verb}: {_call_words(finder)}",
                           needed_to="both"))
    if result.tap_allowed is not None:
        detail = (
            "macOS allowed an active key-event tap: the live permission database grants "
            "Accessibility (the grant, not this process's use of it)"
            if result.tap_allowed else
            "macOS refused an active key-event tap: the live permission database does not "
            "grant Accessibility"
        )
        steps.append(Check("event tap", "ok" if result.tap_allowed else "warn", detail,
                           needed_to="both"))
    return steps


def _screen_recording_check(ax: AxApi) -> Check:
    from deskloop.screen.backends.macos.ax import SCREEN_RECORDING_PANE

    if ax.screen_recording_allowed():
        return Check("screen recording", "ok",
                     "granted: screenshots show the windows (CGPreflightScreenCaptureAccess)")
    return Check(
        "screen recording", "warn",
        "not granted: a screenshot would show only the desktop picture and the menu bar; "
        "reading and acting through accessibility do not need it",
        f"open {SCREEN_RECORDING_PANE}, turn on deskloop (or the terminal app that runs it), "
        "then quit and reopen deskloop",
    )


def _input_monitoring_check(ax: AxApi) -> Check:
    if ax.input_monitoring_allowed():
        return Check("input monitoring", "ok",
                     "granted: `deskloop record` can hear key presses (CGPreflightListenEventAccess)")
    return Check(
        "input monitoring", "warn",
        "not granted: recording a demonstration (`deskloop record`) needs it to hear the keys "
        "typed; reading and acting need only Accessibility",
        INPUT_MONITORING_FIX,
    )
