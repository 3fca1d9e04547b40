"""`deskloop doctor` has a browser line saying which attach route works."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deskloop", "doctor"],
        env=env, capture_output=True, text=True, timeout=60,
    )


def test_doctor_reports_the_route_that_works(tmp_path: Path, empty_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS")}
    env["DESKLOOP_BROWSER_EXECUTABLE"] = str(tmp_path / "no-browser-here")
    nothing = doctor(env)
    assert "[warn] browser: no running browser allows remote debugging" in nothing.stdout
    assert "chrome://inspect/#remote-debugging" in nothing.stdout
    assert "Traceback" not in nothing.stderr

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        profile = tmp_path / "chrome"
        profile.mkdir()
        (profile / "DevToolsActivePort").write_text(f"{port}\n/devtools/browser/abc\n")
        env["DESKLOOP_BROWSER_USER_DATA_DIR"] = str(profile)
        live = doctor(env)
    assert f"[ok  ] browser: attaches to configured at {profile}, port {port}" in live.stdout
    # The browser line never changes the screen verdict (no display here: exit 1).
    assert live.returncode == nothing.returncode == 1
