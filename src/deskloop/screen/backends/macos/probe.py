"""The macOS Accessibility probe in four steps, as Fazm's AppState.swift runs them (the seed
article "...is mostly a permission-probe question"):

1. `AXIsProcessTrusted()`: a per-process cached answer, recorded but never decisive alone.
2. A real call: AXFocusedWindow of the frontmost app, its error code classified.
3. When that call fails with any code but "API disabled" (or there is no frontmost app), the
   same call against Finder, which implements accessibility: Finder answering means the
   permission works and the first app has no accessibility.
4. When calls are refused, and only if this process had the permission before, an active
   key-event tap: only a live Accessibility grant allows one. A refused tap shows the user
   a notification, hence the rule.

The probe returns typed findings; `screen/doctor.py` words them (this module never imports it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from deskloop.screen.backends.macos.ax import (
    AX_API_DISABLED,
    AX_ATTRIBUTE_UNSUPPORTED,
    AX_NO_VALUE,
    AX_NOT_IMPLEMENTED,
    AX_SUCCESS,
    AxApi,
)

# Healthy answers: apps without a focused window, or without that attribute, still answer.
FINE_CODES = frozenset({AX_SUCCESS, AX_NO_VALUE, AX_NOT_IMPLEMENTED, AX_ATTRIBUTE_UNSUPPORTED})
MARKER_NAME = "macos-accessibility-granted"


class Verdict(StrEnum):
    """What the four steps concluded; each has one message and one fix in the doctor."""

    WORKING = "working"
    APP_WITHOUT_ACCESSIBILITY = "app without accessibility"  # Finder answers, that app not
    NOT_GRANTED = "not granted"  # calls refused and the flag says no; no earlier grant
    REVOKED = "revoked"  # granted before; the live database says no now
    GRANTED_NOT_WORKING = "granted but not working"  # live database says yes; calls refused
    REFUSED_DESPITE_TRUST = "refused despite trust"  # flag says yes, calls refused, no tap
    UNCONFIRMED = "unconfirmed"  # only an ambiguous failure, and no Finder to cross-check


WORKING_VERDICTS = frozenset({Verdict.WORKING, Verdict.APP_WITHOUT_ACCESSIBILITY})
# Worth a second look a moment later: a new grant reaches a running process slowly.
SETTLING_VERDICTS = frozenset({Verdict.GRANTED_NOT_WORKING, Verdict.REFUSED_DESPITE_TRUST})


@dataclass(frozen=True)
class RealCall:
    """Steps 2 and 3: AXFocusedWindow of one app. No pid: there was no such app to ask."""

    pid: int | None
    code: int | None = None

    @property
    def answered(self) -> bool:
        return self.code in FINE_CODES


@dataclass(frozen=True)
class ProbeResult:
    """The findings of each step that ran, and the verdict they add up to."""

    verdict: Verdict
    trusted: bool  # step 1
    had_permission_before: bool
    frontmost: RealCall  # step 2
    finder: RealCall | None = None  # step 3; None: not needed
    tap_allowed: bool | None = None  # step 4; None: not run

    @property
    def working(self) -> bool:
        return self.verdict in WORKING_VERDICTS


def _real_call(ax: AxApi, pid: int | None) -> RealCall:
    if pid is None:
        return RealCall(None)
    error, _ = ax.copy_attribute(ax.application(pid), "AXFocusedWindow")
    return RealCall(pid, error)


def probe_once(ax: AxApi, had_permission_before: bool) -> ProbeResult:
    """One run of the four steps."""
    trusted = ax.is_process_trusted()
    front = _real_call(ax, ax.frontmost_pid())

    def found(verdict: Verdict, finder: RealCall | None = None, tap: bool | None = None) -> ProbeResult:
        return ProbeResult(verdict, trusted, had_permission_before, front, finder, tap)

    if front.answered:
        return found(Verdict.WORKING)
    finder = None
    if front.code != AX_API_DISABLED:  # ambiguous: that app, or the permission?
        finder = _real_call(ax, ax.finder_pid())
        if finder.answered:
            in_front = front.pid is not None
            return found(Verdict.APP_WITHOUT_ACCESSIBILITY if in_front else Verdict.WORKING, finder)
    # Refused: "API disabled", or Finder failed too; otherwise nobody could settle it.
    refused = front.code == AX_API_DISABLED or (finder is not None and finder.pid is not None)
    if had_permission_before:
        tap = ax.accessibility_tap_allowed()
        return found(Verdict.GRANTED_NOT_WORKING if tap else Verdict.REVOKED, finder, tap)
    if not refused:
        return found(Verdict.UNCONFIRMED, finder)
    return found(Verdict.REFUSED_DESPITE_TRUST if trusted else Verdict.NOT_GRANTED, finder)


def probe(
    ax: AxApi,
    had_permission_before: bool,
    attempts: int = 3,
    delay_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> ProbeResult:
    """Probe, looking again a few times at a grant that is not working yet (TCC settles
    slowly); blocking, so async callers run it in a thread."""
    result = probe_once(ax, had_permission_before)
    for _ in range(attempts - 1):
        if result.verdict not in SETTLING_VERDICTS:
            return result
        sleep(delay_s)
        result = probe_once(ax, had_permission_before)
    return result


def grant_marker() -> Path:
    """The file that says the permission worked here once (it outlives the process)."""
    from deskloop.settings import paths

    return paths().data_dir / MARKER_NAME


class GrantMemory:
    """Whether the permission ever worked: in this process, or in one before (the marker)."""

    def __init__(self, marker: Path | None = None) -> None:
        self.marker = marker or grant_marker()
        self.seen = False

    def had(self) -> bool:
        return self.seen or self.marker.exists()

    def remember(self) -> None:
        self.seen = True
        try:
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            self.marker.touch()
        except OSError:
            pass  # a read-only data dir: this process still remembers


def probe_and_remember(ax: AxApi, marker: Path | None = None) -> ProbeResult:
    """`probe`, told whether the permission worked here before, and remembering it if so."""
    memory = GrantMemory(marker)
    result = probe(ax, memory.had())
    if result.working:
        memory.remember()
    return result


class PermissionWatcher:
    """Re-checks the permission while the agent runs; `changed` is true when it flipped."""

    def __init__(self, ax: AxApi, marker: Path | None = None) -> None:
        self.ax = ax
        self.memory = GrantMemory(marker)
        self.last: ProbeResult | None = None

    def check(self) -> tuple[ProbeResult, bool]:
        result = probe_once(self.ax, had_permission_before=self.memory.had())
        if result.working:
            self.memory.remember()
        changed = self.last is not None and self.last.working != result.working
        self.last = result
        return result, changed
