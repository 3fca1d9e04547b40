"""`deskloop observe` and `deskloop doctor` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from deskloop.screen.virtual_desktop import VirtualDesktop

DESKLOOP = [sys.executable, "-m", "deskloop"]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DESKLOOP, *args], env=env, capture_output=True, text=True, timeout=60)


def bare_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "WAYLAND_DISPLAY")}
    return env


def desktop_env(desktop: VirtualDesktop) -> dict[str, str]:
    return {**bare_env(), "DISPLAY": desktop.display, "DBUS_SESSION_BUS_ADDRESS": desktop.bus_address}


def test_doctor_without_display_or_bus_fails_with_fixes() -> None:
    result = run(["doctor"], bare_env())
    assert result.returncode == 1
    assert "[FAIL] display: no display: DISPLAY is not set" in result.stdout
    assert "fix: run deskloop in your desktop session, or set DISPLAY" in result.stdout
    assert "dbus-run-session" in result.stdout
    assert "can see the screen: no; can act on it: no" in result.stdout


def test_observe_without_a_bus_says_what_to_do() -> None:
    result = run(["observe"], bare_env())
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "neither DISPLAY nor DBUS_SESSION_BUS_ADDRESS is set" in result.stderr
    assert '"env": {"DISPLAY": ":0"}' in result.stderr  # what an MCP host's config needs


@pytest.mark.desktop
def test_doctor_passes_on_the_test_desktop(desktop: VirtualDesktop) -> None:
    result = run(["doctor", "--json"], desktop_env(desktop))
    report = json.loads(result.stdout)
    assert result.returncode == 0, result.stdout
    assert report["can_see"] and report["can_act"]
    names = {check["name"]: check["status"] for check in report["checks"]}
    assert names["synthetic input"] == names["registry"] == names["apps listed"] == "ok"
    assert names["read of the focused app"] == "ok"


@pytest.mark.desktop
def test_observe_prints_text_and_json(desktop: VirtualDesktop) -> None:
    env = desktop_env(desktop)
    text = run(["observe", "--app", "mousepad", "--budget", "200"], env)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith('window "Untitled 1 - Mousepad" pid ')
    assert 'menu "File"' in text.stdout
    as_json = run(["observe", "--pid", str(desktop.pids["mousepad"]), "--json"], env)
    snapshot = json.loads(as_json.stdout)
    assert snapshot["app"] == "mousepad"
    assert any(e["role"] == "menu" and e["name"] == "File" for e in snapshot["elements"])


@pytest.mark.desktop
def test_observe_advice_names_the_commands_options(desktop: VirtualDesktop) -> None:
    env = desktop_env(desktop)
    missing = run(["observe", "--app", "no-such-app"], env)
    assert missing.returncode == 1
    assert "Start it first, or pick one of these" in missing.stderr
    assert "open_app" not in missing.stderr and "Traceback" not in missing.stderr
    small = run(["observe", "--app", "gtk3-widget-factory", "--budget", "60"], env)
    assert small.returncode == 0, small.stderr
    assert "find_elements" not in small.stdout
