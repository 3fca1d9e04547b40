"""The macOS permission probe: never trust `AXIsProcessTrusted()` alone (REFERENCE.md).

1. Ask the (per-process, cached) trust flag. 2. If it says yes, make a real call: the
frontmost app's focused window, error code classified. 3. On "cannot complete", repeat
against Finder: Finder fine means the first app simply has no accessibility. 4. When
Finder is not running, or the flag says no for a process that had permission before, a
listen-only event tap asks the live permission database.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deskloop.screen.backends.macos.ax import (
    AX_API_DISABLED,
    AX_ATTRIBUTE_UNSUPPORTED,
    AX_CANNOT_COMPLETE,
    AX_NO_VALUE,
    AX_NOT_IMPLEMENTED,
    AX_SUCCESS,
    AxApi,
)
from deskloop.screen.doctor import Check, DoctorReport

FINE_CODES = frozenset({AX_SUCCESS, AX_NO_VALUE, AX_NOT_IMPLEMENTED, AX_ATTRIBUTE_UNSUPPORTED})
GRANT_FIX = (
    "open System Settings > Privacy & Security > Accessibility and turn deskloop (or the "
    "terminal running it) on"
)
REOPEN_VERDICT = "permission granted but not working yet: quit and reopen deskloop"


@dataclass(frozen=True)
class ProbeResult:
    """What the four steps concluded."""

    working: bool
    verdict: str  # "working", "not granted", "granted but not working", "broken"
    steps: tuple[Check, ...]


def _real_call(ax: AxApi, pid: int) -> int:
    error, _ = ax.copy_attribute(ax.application(pid), "AXFocusedWindow")
    return error


def probe_once(ax: AxApi, had_permission_before: bool) -> ProbeResult:
    """One run of the four steps."""
    steps: list[Check] = []
    trusted = ax.is_process_trusted()
    steps.append(Check("trust flag", "ok" if trusted else "warn",
                       f"AXIsProcessTrusted() says {'yes' if trusted else 'no'} (a cached answer)"))
    finder = ax.finder_pid()
    if trusted:
        front = ax.frontmost_pid()
        code = _real_call(ax, front) if front is not None else AX_NO_VALUE
        if code in FINE_CODES:
            steps.append(Check("real call", "ok", f"frontmost app answered (AXError {code})"))
            return ProbeResult(True, "working", tuple(steps))
        if code == AX_API_DISABLED:
            steps.append(Check("real call", "fail", "API disabled: accessibility calls are refused",
                               GRANT_FIX, "both"))
            return ProbeResult(False, "broken", tuple(steps))
        steps.append(Check("real call", "warn",
                           f"frontmost app: AXError {code} (cannot complete is ambiguous)"))
        if code == AX_CANNOT_COMPLETE and finder is not None:
            finder_code = _real_call(ax, finder)
            if finder_code in FINE_CODES:
                steps.append(Check("Finder cross-check", "ok", "Finder answers: the frontmost app "
                                   "simply has no accessibility support"))
                return ProbeResult(True, "working", tuple(steps))
            steps.append(Check("Finder cross-check", "fail", f"Finder fails too (AXError "
                               f"{finder_code})", REOPEN_VERDICT, "both"))
            return ProbeResult(False, "broken", tuple(steps))
    elif not had_permission_before:
        steps.append(Check("permission", "fail", "deskloop has no accessibility permission",
                           GRANT_FIX, "both"))
        return ProbeResult(False, "not granted", tuple(steps))
    # Finder not running, or a "no" from a process that had permission: ask the live database.
    if ax.event_tap_allowed():
        steps.append(Check("event tap", "fail", "the live permission is granted but this "
                           "process's cached trust is stale", REOPEN_VERDICT, "both"))
        return ProbeResult(False, "granted but not working", tuple(steps))
    steps.append(Check("event tap", "fail", "the live permission database says no", GRANT_FIX,
                       "both"))
    return ProbeResult(False, "not granted", tuple(steps))


def probe(
    ax: AxApi,
    had_permission_before: bool,
    attempts: int = 3,
    delay_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> ProbeResult:
    """Probe, re-checking a few times when broken before calling it (TCC settles slowly)."""
    result = probe_once(ax, had_permission_before)
    for _ in range(attempts - 1):
        if result.working or result.verdict == "not granted":
            return result
        sleep(delay_s)
        result = probe_once(ax, had_permission_before)
    return result


def _marker() -> Path:
    from deskloop.settings import paths

    return paths().data_dir / "macos-accessibility-granted"


def run_macos_probe(ax: AxApi | None = None, marker: Path | None = None) -> DoctorReport:
    """The doctor report on macOS; remembers a working permission for the next probe."""
    from deskloop.screen.backends.macos.ax import PyObjCAx

    api = ax or PyObjCAx()
    remembered = marker or _marker()
    result = probe(api, had_permission_before=remembered.exists())
    if result.working:
        remembered.parent.mkdir(parents=True, exist_ok=True)
        remembered.touch()
    report = DoctorReport("macos", list(result.steps))
    if result.verdict == "granted but not working":
        report.verdict = REOPEN_VERDICT
    elif not result.working:
        report.verdict = f"accessibility: {result.verdict}. Fix: {GRANT_FIX}"
    return report


class PermissionWatcher:
    """Re-checks the permission while the agent runs; `changed` is true when it flipped."""

    def __init__(self, ax: AxApi, marker: Path | None = None) -> None:
        self.ax = ax
        self.marker = marker
        self.last: ProbeResult | None = None

    def check(self) -> tuple[ProbeResult, bool]:
        had = self.marker.exists() if self.marker is not None else bool(
            self.last and self.last.working
        )
        result = probe_once(self.ax, had_permission_before=had)
        changed = self.last is not None and self.last.working != result.working
        self.last = result
        return result, changed
