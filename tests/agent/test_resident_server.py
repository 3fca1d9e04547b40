"""One resident embedded model server: reused, restarted when dead, started once, stopped when idle.

The server runs the scripted engine (a test fake, asked for by name through `serve_args`);
`test_embedded_session.py` drives the same path through `deskloop run` on the real model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deskloop.agent.resident_server import (
    describe,
    find_resident_server,
    state_folder,
    stop_resident_server,
    use_resident_server,
)
from deskloop.screen.doctor import Check

pytestmark = pytest.mark.slow  # starts real server processes


@pytest.fixture
def serve_args(tmp_path: Path) -> Iterator[list[str]]:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"outputs": ["hello"], "repeat_last": True}))
    yield ["--engine", "scripted", "--script", str(script)]
    stop_resident_server()  # whatever a test left running


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def wait_for(condition: object, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.1)
    return False


def test_a_second_use_reuses_the_running_server(serve_args: list[str]) -> None:
    first, hold = use_resident_server(serve_args)
    hold.release()
    second, hold = use_resident_server(serve_args)
    hold.release()
    assert (second.url, second.server_pid) == (first.url, first.server_pid)
    assert httpx.get(f"{second.url}/health").json()["model"] == "scripted"
    assert "running at " + first.url in describe()


def test_a_killed_server_is_started_again_on_the_next_use(serve_args: list[str]) -> None:
    first, hold = use_resident_server(serve_args)
    hold.release()
    os.kill(first.server_pid, signal.SIGKILL)
    second, hold = use_resident_server(serve_args)
    hold.release()
    assert second.server_pid != first.server_pid
    assert httpx.get(f"{second.url}/health").json()["status"] == "ok"
    assert wait_for(lambda: gone(first.keeper_pid))  # the dead one's keeper went too


def test_two_commands_at_once_start_one_server(serve_args: list[str]) -> None:
    code = (
        "import sys\n"
        "from deskloop.agent.resident_server import use_resident_server\n"
        "server, hold = use_resident_server(sys.argv[1:])\n"
        "print(server.server_pid, server.url)\n"
    )
    starts = [
        subprocess.Popen([sys.executable, "-c", code, *serve_args], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    answers = {process.communicate(timeout=120)[0].strip() for process in starts}
    assert len(answers) == 1, answers
    found = find_resident_server()
    assert found is not None and answers == {f"{found.server_pid} {found.url}"}


def test_it_stops_after_the_idle_time_once_nobody_holds_it(
    serve_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESKLOOP_SERVER_IDLE_MINUTES", "0.02")  # 1.2 s
    server, hold = use_resident_server(serve_args)
    time.sleep(3)  # past the idle time, but held: a chat waiting for its person
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    hold.release()
    assert wait_for(lambda: gone(server.server_pid) and gone(server.keeper_pid))
    assert find_resident_server() is None
    assert not (state_folder() / "server.json").exists()
    assert describe().startswith("not running")


def test_requests_keep_it_up_past_the_idle_time(
    serve_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESKLOOP_SERVER_IDLE_MINUTES", "0.03")  # 1.8 s
    server, hold = use_resident_server(serve_args)
    hold.release()
    for _ in range(8):  # 4 s of requests, a request every half second
        httpx.get(f"{server.url}/v1/models").raise_for_status()
        time.sleep(0.5)
    assert not gone(server.server_pid)
    assert wait_for(lambda: gone(server.server_pid))


def test_other_server_settings_replace_it(
    serve_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, hold = use_resident_server(serve_args)
    hold.release()
    monkeypatch.setenv("DESKLOOP_SERVER_CONTEXT_WINDOW", "4096")
    second, hold = use_resident_server(serve_args)
    hold.release()
    assert second.server_pid != first.server_pid
    assert gone(first.keeper_pid)


def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    from deskloop.agent.resident_server import ResidentServerError

    with pytest.raises(ResidentServerError, match=r"did not start.*server\.log"):
        use_resident_server(["--engine", "scripted", "--script", str(tmp_path / "missing.json")])
    assert find_resident_server() is None


def test_doctor_shows_it(serve_args: list[str]) -> None:
    from deskloop.agent.resident_server import doctor_checks

    (check,) = doctor_checks()
    assert check == Check(
        "resident model server",
        "ok",
        "not running (the first session that needs the embedded model starts it)",
        needed_to="both",
    )
    server, hold = use_resident_server(serve_args)
    hold.release()
    shown = subprocess.run(
        [sys.executable, "-m", "deskloop", "doctor"], capture_output=True, text=True, timeout=120
    ).stdout
    assert f"resident model server: running at {server.url} (scripted, pid {server.server_pid})" in shown
    assert "idle for" in shown and "stops after 15 min idle" in shown
