"""`deskloop scheduler install|uninstall` writes and removes a user service definition."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deskloop.scheduler.install import launchd_plist, systemd_unit


def deskloop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deskloop", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.skipif(sys.platform != "linux", reason="systemd user units are Linux's")
def test_install_writes_a_unit_that_systemd_accepts_and_uninstall_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    installed = deskloop("scheduler", "install", "--no-start")
    assert installed.returncode == 0, installed.stderr
    unit = tmp_path / "config" / "systemd" / "user" / "deskloop-scheduler.service"
    assert f"wrote {unit}" in installed.stdout
    assert "systemctl --user enable --now deskloop-scheduler.service" in installed.stdout
    text = unit.read_text()
    assert f"ExecStart={sys.executable} -m deskloop scheduler" in text
    assert "DESKLOOP_HOME=" in text  # the tests' home follows the service
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    runtime = tmp_path / "runtime"  # --user needs a runtime dir, even with no user manager
    runtime.mkdir(mode=0o700)
    verified = subprocess.run(
        ["systemd-analyze", "verify", "--user", str(unit)],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
        timeout=60,
    )
    assert verified.returncode == 0, verified.stderr
    assert "deskloop-scheduler.service" not in verified.stderr, verified.stderr
    removed = deskloop("scheduler", "uninstall")
    assert removed.returncode == 0 and f"removed {unit}" in removed.stdout
    assert not unit.exists()
    again = deskloop("scheduler", "uninstall")
    assert "no scheduler service was installed" in again.stdout


def test_the_launchd_agent_runs_the_scheduler_at_login_and_after_a_crash() -> None:
    agent = plistlib.loads(launchd_plist())
    assert agent["ProgramArguments"] == [sys.executable, "-m", "deskloop", "scheduler"]
    assert agent["RunAtLoad"] is True and agent["KeepAlive"] == {"SuccessfulExit": False}


def test_a_path_with_spaces_is_quoted_for_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/opt/my apps/python3")
    monkeypatch.setenv("DESKLOOP_HOME", "/home/me/deskloop 100%")
    text = systemd_unit()
    assert 'ExecStart="/opt/my apps/python3" -m deskloop scheduler' in text
    assert 'Environment="DESKLOOP_HOME=/home/me/deskloop 100%%"' in text
