"""`deskloop scheduler install|uninstall`: a systemd user unit on Linux, a launchd agent on macOS."""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from deskloop.errors import DeskloopError
from deskloop.settings import paths

UNIT_NAME = "deskloop-scheduler.service"
LAUNCHD_LABEL = "dev.deskloop.scheduler"


class InstallError(DeskloopError):
    """This platform has no service manager deskloop knows, or it refused the unit."""


@dataclass(frozen=True)
class Installed:
    path: Path
    # What was run to start it, or what the person should run when that was not possible.
    said: list[str]


def scheduler_command() -> list[str]:
    return [sys.executable, "-m", "deskloop", "scheduler"]


def _passed_environment() -> dict[str, str]:
    """Settings that move deskloop's folders or model must follow it into the service."""
    keep = ("DESKLOOP_HOME", "ANTHROPIC_BASE_URL")
    found = {name: os.environ[name] for name in keep if os.environ.get(name)}
    found.update({k: v for k, v in os.environ.items() if k.startswith("DESKLOOP_AGENT_")})
    return found


def systemd_unit_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user" / UNIT_NAME


def systemd_unit() -> str:
    """The unit text; the service restarts after a crash, and its children die with it."""
    environment = "".join(
        f"Environment={_systemd_quote(f'{k}={v}')}\n" for k, v in _passed_environment().items()
    )
    command = " ".join(_systemd_quote(part) for part in scheduler_command())
    return (
        "[Unit]\n"
        "Description=deskloop scheduler: runs deskloop routines and the observer\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStart={command}\n"
        f"{environment}"
        "Restart=on-failure\n"
        "RestartSec=10\n"
        "KillMode=control-group\n"
        "\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def _systemd_quote(word: str) -> str:
    # systemd.syntax(7): double quotes, with backslash escapes; % doubled for specifiers.
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"' if any(c in word for c in " \"\\'") else escaped


def launchd_plist_path() -> Path:
    return Path.home() / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"


def launchd_plist() -> bytes:
    logs = paths().logs_dir
    return plistlib.dumps(
        {
            "Label": LAUNCHD_LABEL,
            "ProgramArguments": scheduler_command(),
            "EnvironmentVariables": _passed_environment(),
            "RunAtLoad": True,
            "KeepAlive": {"SuccessfulExit": False},
            "StandardOutPath": str(logs / "scheduler.log"),
            "StandardErrorPath": str(logs / "scheduler.log"),
        }
    )


def _run(command: list[str]) -> str | None:
    """Run a service-manager command; its complaint when it fails, None when it worked."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if done.returncode == 0 else (done.stderr or done.stdout).strip()


def install(*, start: bool = True) -> Installed:
    """Write the unit (or agent) for this platform; with `start`, enable and start it."""
    if sys.platform == "darwin":
        path = launchd_plist_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        paths().logs_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(launchd_plist())
        steps = [["launchctl", "bootstrap", f"gui/{os.getuid()}", str(path)]]
    elif sys.platform.startswith("linux"):
        path = systemd_unit_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(systemd_unit(), encoding="utf-8")
        steps = [
            ["systemctl", "--user", "daemon-reload"],
            ["systemctl", "--user", "enable", "--now", UNIT_NAME],
        ]
    else:
        raise InstallError(
            f"no service manager for {sys.platform}; run `deskloop scheduler` from your "
            "session's startup programs instead"
        )
    return Installed(path, _start(steps) if start else [shlex.join(s) for s in steps])


def _start(steps: list[list[str]]) -> list[str]:
    if shutil.which(steps[0][0]) is None:
        return [shlex.join(step) for step in steps]
    for index, step in enumerate(steps):
        problem = _run(step)
        if problem is not None:
            left = [shlex.join(s) for s in steps[index:]]
            return [f"could not run `{left[0]}` ({problem}); run it yourself:", *left]
    return ["started: " + shlex.join(steps[-1])]


def uninstall() -> Path | None:
    """Stop and remove the unit (or agent); the path removed, or None when none was there."""
    if sys.platform == "darwin":
        path = launchd_plist_path()
        stop = [["launchctl", "bootout", f"gui/{os.getuid()}/{LAUNCHD_LABEL}"]]
    else:
        path = systemd_unit_path()
        stop = [["systemctl", "--user", "disable", "--now", UNIT_NAME]]
    if not path.exists():
        return None
    if shutil.which(stop[0][0]) is not None:
        for step in stop:
            _run(step)  # not loaded, or no user manager: removing the file is what matters
    path.unlink()
    if sys.platform != "darwin" and shutil.which("systemctl") is not None:
        _run(["systemctl", "--user", "daemon-reload"])
    return path
