"""The four-step accessibility probe and `deskloop doctor` on macOS, against the fake Mac.

The steps (the seed article on the permission probe): 1. AXIsProcessTrusted(), never trusted
alone; 2. a real AX call, the frontmost app's focused window; 3. the same call against Finder
when step 2 fails; 4. an event tap that only a live Accessibility grant allows, and only when
the process had the permission before (a refused tap shows the user a system notification).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deskloop.screen.backends.macos.ax import PyObjCAx
from deskloop.screen.backends.macos.probe import PermissionWatcher, ProbeResult, probe
from deskloop.screen.doctor import run_doctor
from deskloop.settings import paths
from tests.screen.fake_macos import AX_CODES, App, FakeMac, Window, install


@pytest.fixture
def mac(monkeypatch: pytest.MonkeyPatch) -> FakeMac:
    fake = install(monkeypatch)
    fake.add_app(App("TextEdit", 501, "com.apple.TextEdit", [Window("Untitled", (100, 100, 600, 400))]))
    return fake


@pytest.fixture
def on_a_mac(mac: FakeMac, monkeypatch: pytest.MonkeyPatch) -> FakeMac:
    monkeypatch.setattr(sys, "platform", "darwin")
    return mac


def probe_now(had_permission_before: bool) -> ProbeResult:
    return probe(PyObjCAx(), had_permission_before, sleep=lambda _: None)


def remember_a_grant() -> None:
    marker = paths().data_dir / "macos-accessibility-granted"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def without_finder(mac: FakeMac) -> None:
    mac.quit_app(1)
    mac.frontmost = 501
    mac.turn_run_loop()


def test_a_grant_made_while_running_works_though_the_flag_still_says_no(mac: FakeMac) -> None:
    mac.set_permission("granted_now")  # the request_permission flow: granted after launch
    result = probe_now(had_permission_before=False)
    assert result.working and result.verdict == "working"


def test_with_no_frontmost_app_a_real_call_is_still_made(mac: FakeMac) -> None:
    mac.frontmost = None
    mac.turn_run_loop()
    mac.set_permission("stale")  # the trust flag says yes, every call fails
    result = probe_now(had_permission_before=False)
    assert not result.working


@pytest.mark.parametrize("code", [AX_CODES["failure"], AX_CODES["invalid"], AX_CODES["cannot_complete"]])
def test_any_failure_of_the_frontmost_app_is_cross_checked_with_finder(mac: FakeMac, code: int) -> None:
    mac.add_app(App("PyMOL", 600, windows=[Window("PyMOL", (0, 0, 800, 600))], ax_error=code))
    result = probe_now(had_permission_before=True)
    assert (result.working, result.verdict) == (True, "app without accessibility")
    assert mac.taps == []


def test_the_event_tap_waits_for_an_earlier_grant(mac: FakeMac) -> None:
    mac.set_permission("stale")
    without_finder(mac)
    result = probe_now(had_permission_before=False)
    assert mac.taps == [] and mac.system_notifications == []
    assert result.verdict == "unconfirmed"


def test_the_tap_tells_a_revoked_grant_from_a_stale_one(mac: FakeMac) -> None:
    # A listen-only mouse tap is created without any permission: it cannot tell these apart.
    mac.set_permission("revoked_flag_no")
    assert probe_now(had_permission_before=True).verdict == "revoked"
    mac.set_permission("stale_flag_no")
    assert probe_now(had_permission_before=True).verdict == "granted but not working"


def test_the_watcher_remembers_a_grant_across_failed_polls(mac: FakeMac) -> None:
    watcher = PermissionWatcher(PyObjCAx())
    assert watcher.check()[0].working
    mac.set_permission("stale_flag_no")
    first, changed = watcher.check()
    second, _ = watcher.check()
    assert changed
    assert first.verdict == second.verdict == "granted but not working"


def test_the_watcher_writes_the_marker(mac: FakeMac, tmp_path: Path) -> None:
    marker = tmp_path / "granted"
    PermissionWatcher(PyObjCAx(), marker).check()
    assert marker.exists()


@dataclass(frozen=True)
class Outcome:
    """One probe outcome as `deskloop doctor` words it."""

    verdict: str
    setup: Callable[[FakeMac], Any]
    had_permission_before: bool
    message: str
    fix: str
    exit_code: int


def pymol_in_front(mac: FakeMac) -> None:
    mac.add_app(App("PyMOL", 600, windows=[Window("PyMOL", (0, 0, 800, 600))],
                    ax_error=AX_CODES["cannot_complete"]))


def stale_without_finder(mac: FakeMac) -> None:
    mac.set_permission("stale")
    without_finder(mac)


OUTCOMES = [
    Outcome("working", lambda mac: mac.set_permission("granted"), False,
            "accessibility works", "", 0),
    Outcome("app without accessibility", pymol_in_front, False,
            "accessibility works; the frontmost app (pid 600) does not answer", "", 0),
    Outcome("not granted", lambda mac: mac.set_permission("never"), False,
            "accessibility is not granted", "turn on deskloop", 1),
    Outcome("revoked", lambda mac: mac.set_permission("revoked_flag_no"), True,
            "accessibility was granted before and is off now", "turn deskloop", 1),
    Outcome("granted but not working", lambda mac: mac.set_permission("stale_flag_no"), True,
            "accessibility is granted but not working yet", "quit and reopen deskloop", 1),
    Outcome("refused despite trust", lambda mac: mac.set_permission("stale"), False,
            "macOS says accessibility is granted, but its calls fail", "add it again", 1),
    Outcome("unconfirmed", stale_without_finder, False,
            "accessibility unconfirmed", "open Finder", 0),
]


@pytest.mark.parametrize("outcome", OUTCOMES, ids=[outcome.verdict for outcome in OUTCOMES])
async def test_each_outcome_has_one_message_and_one_fix(on_a_mac: FakeMac, outcome: Outcome) -> None:
    outcome.setup(on_a_mac)
    if outcome.had_permission_before:
        remember_a_grant()
    report = await run_doctor()
    accessibility = [c for c in report.checks if c.name not in ("screen recording", "input monitoring")]
    fixes = {check.fix for check in accessibility if check.status != "ok" and check.fix}
    assert report.verdict.startswith(outcome.message), report.render()
    assert report.exit_code == outcome.exit_code
    if outcome.fix:
        assert len(fixes) == 1 and outcome.fix in fixes.pop()
        assert outcome.fix in report.verdict
    else:
        assert fixes == set()


def test_the_outcome_table_covers_every_verdict() -> None:
    from deskloop.screen.backends.macos.probe import Verdict
    from deskloop.screen.doctor import MACOS_VERDICTS

    assert set(MACOS_VERDICTS) == {verdict.value for verdict in Verdict}
    assert {outcome.verdict for outcome in OUTCOMES} == set(MACOS_VERDICTS)


async def test_the_doctor_names_the_failing_code(on_a_mac: FakeMac) -> None:
    on_a_mac.add_app(App("Gone", 700, windows=[Window("Gone", (0, 0, 10, 10))],
                         ax_error=AX_CODES["invalid"]))
    text = (await run_doctor()).render()
    assert "AXError -25202 (invalid element" in text
    assert "cannot complete" not in text


async def test_the_doctor_checks_screen_recording_and_input_monitoring(on_a_mac: FakeMac) -> None:
    on_a_mac.screen_recording = on_a_mac.input_monitoring = False
    report = await run_doctor()
    checks = {check.name: check for check in report.checks}
    assert checks["screen recording"].status == "warn"
    assert "Screen Recording" in checks["screen recording"].fix
    assert checks["input monitoring"].status == "warn"
    assert "Input Monitoring" in checks["input monitoring"].fix
    assert report.exit_code == 0  # AX reads and acts without either
    on_a_mac.screen_recording = on_a_mac.input_monitoring = True
    checks = {check.name: check for check in (await run_doctor()).checks}
    assert checks["screen recording"].status == checks["input monitoring"].status == "ok"


async def test_the_doctor_probes_off_the_event_loop(on_a_mac: FakeMac) -> None:
    threads: list[threading.Thread] = []
    services = sys.modules["ApplicationServices"]
    trusted = services.AXIsProcessTrusted
    services.AXIsProcessTrusted = lambda: threads.append(threading.current_thread()) or trusted()
    await run_doctor()
    assert threads and threading.main_thread() not in threads


async def test_the_doctor_without_pyobjc_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    for name in ("ApplicationServices", "Quartz", "AppKit"):
        monkeypatch.setitem(sys.modules, name, None)  # `import` raises ImportError
    report = await run_doctor()
    assert report.exit_code == 1
    assert "deskloop[macos]" in report.render()
