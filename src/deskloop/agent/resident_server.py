"""One embedded model server for every command: started on first need, reused, stopped when idle.

The first `deskloop run`, `chat`, `ui` session or scheduler fire that needs the embedded
model starts a keeper (`deskloop.agent.resident_keeper`, detached), which runs
`deskloop serve` and writes its address to `<data dir>/model-server/server.json`. Later
commands reuse it, so its prefix cache already holds the system prompt and tools. A
command holds it (a shared lock on `in-use.lock`) while it uses it; the keeper stops the
server after `server.idle_minutes` with no request and no holder. Starting takes
`start.lock`, so two commands at once start one server; a server that died, or that was
started with other settings, is replaced on the next need.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import httpx

from deskloop.agent.endpoint import EndpointError
from deskloop.agent.resident_keeper import (
    ACTIVITY_FILE,
    HEALTH_TIMEOUT_S,
    IN_USE_LOCK,
    LOG_FILE,
    READY,
    START_LOCK,
    START_TIMEOUT_S,
    STATE_FILE,
    read_state,
)
from deskloop.settings import load_settings, paths

if TYPE_CHECKING:
    from deskloop.screen.doctor import Check

__all__ = [
    "ResidentServer",
    "ResidentServerError",
    "ServerHold",
    "doctor_checks",
    "find_resident_server",
    "state_folder",
    "stop_resident_server",
    "use_resident_server",
]

STOP_TIMEOUT_S = 15.0


class ResidentServerError(EndpointError):
    """The resident model server could not be started; the message says why and what to do."""


@dataclass(frozen=True)
class ResidentServer:
    """A running resident server, as its keeper wrote it down."""

    url: str
    model: str
    keeper_pid: int
    server_pid: int
    started_at: float
    idle_minutes: float
    fingerprint: str

    def idle_seconds(self) -> float:
        """Seconds since the keeper last saw a request or a holder."""
        try:
            last = (state_folder() / ACTIVITY_FILE).stat().st_mtime
        except OSError:
            last = self.started_at
        return max(0.0, time.time() - last)


class ServerHold:
    """A command's hold on the resident server: the keeper stops it only when none is held."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = (folder / IN_USE_LOCK).open("a+", encoding="utf-8")
        # Waits while a keeper is stopping its server (it holds the lock exclusively).
        fcntl.flock(self._file, fcntl.LOCK_SH)

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the lock
            self._file = None


def state_folder() -> Path:
    return paths().data_dir / "model-server"


def fingerprint(serve_args: Sequence[str]) -> str:
    """What the server was started with: `serve` arguments and the server settings."""
    server = dataclasses.asdict(load_settings().server)
    server.pop("idle_minutes", None)  # changing when it stops is no reason to restart it
    text = json.dumps([list(serve_args), server], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def find_resident_server() -> ResidentServer | None:
    """The server named in the state file whose keeper lives, without asking it anything."""
    state = read_state(state_folder())
    if state is None:
        return None
    try:
        found = ResidentServer(
            url=str(state["url"]),
            model=str(state["model"]),
            keeper_pid=int(state["keeper_pid"]),
            server_pid=int(state["server_pid"]),
            started_at=float(state["started_at"]),
            idle_minutes=float(state["idle_minutes"]),
            fingerprint=str(state["fingerprint"]),
        )
    except (KeyError, TypeError, ValueError):
        return None
    return found if _alive(found.keeper_pid) else None


def _answers(server: ResidentServer) -> bool:
    """/health answers, and for the model the keeper wrote down."""
    try:
        health = httpx.get(f"{server.url}/health", timeout=HEALTH_TIMEOUT_S).json()
    except (httpx.HTTPError, ValueError):
        return False
    return isinstance(health, dict) and health.get("model") == server.model


def _reusable(wanted: str) -> ResidentServer | None:
    found = find_resident_server()
    if found is None or found.fingerprint != wanted or not _answers(found):
        return None
    return found


def use_resident_server(serve_args: Sequence[str] = ()) -> tuple[ResidentServer, ServerHold]:
    """The running server, else one started now; with a hold the caller releases when done.

    Blocks (model loading: up to minutes); call it from a worker thread in async code.
    """
    folder = state_folder()
    hold = ServerHold(folder)
    try:
        wanted = fingerprint(serve_args)
        found = _reusable(wanted)
        if found is not None:
            return found, hold
        with _locked(folder / START_LOCK):
            found = _reusable(wanted)  # another command may have started it meanwhile
            if found is None:
                _stop_keeper(folder)
                found = _start(folder, serve_args, wanted)
        return found, hold
    except BaseException:
        hold.release()
        raise


def stop_resident_server() -> bool:
    """Stop the resident server now (whoever holds it); False when none ran."""
    folder = state_folder()
    with _locked(folder / START_LOCK):
        return _stop_keeper(folder)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _stop_keeper(folder: Path) -> bool:
    """Stop what the state file names (a keeper, else an orphaned server); True if one ran."""
    state = read_state(folder)
    if state is None:
        return False
    stopped = False
    for key in ("keeper_pid", "server_pid"):  # the keeper stops its server itself
        pid = state.get(key)
        if isinstance(pid, int) and _alive(pid):
            stopped = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            _wait_gone(pid, STOP_TIMEOUT_S)
    with contextlib.suppress(OSError):
        (folder / STATE_FILE).unlink()
    return stopped


def _start(folder: Path, serve_args: Sequence[str], wanted: str) -> ResidentServer:
    idle = load_settings().server.idle_minutes
    command = [sys.executable, "-m", "deskloop.agent.resident_keeper", str(folder), str(idle),
               wanted, "--", *serve_args]  # fmt: skip
    (folder / LOG_FILE).write_text("", encoding="utf-8")  # this server's log only
    with (folder / LOG_FILE).open("a", encoding="utf-8") as log:
        keeper = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,  # outlives this command, and Ctrl-C in its terminal
        )
    assert keeper.stdout is not None
    line = _first_line(keeper.stdout, START_TIMEOUT_S)
    keeper.stdout.close()
    # Reaped when it ends, should this process outlive it (the UI, the scheduler).
    threading.Thread(target=keeper.wait, daemon=True).start()
    found = find_resident_server() if READY in line else None
    if found is None:
        said = line.removeprefix("failed: ").strip() or "no output"
        if keeper.poll() is None:
            keeper.terminate()
        raise ResidentServerError(
            f"the embedded model server did not start ({said}); see {folder / LOG_FILE}, "
            "or run `deskloop serve` on its own to see why"
        )
    return found


def _first_line(stream: IO[str], timeout_s: float) -> str:
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    return lines[0] if lines else ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return status == "Z"


def _wait_gone(pid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def describe() -> str:
    """One line for `deskloop doctor`: running at URL and idle for how long, or not running."""
    found = find_resident_server()
    if found is None:
        return "not running (the first session that needs the embedded model starts it)"
    idle_s = found.idle_seconds()
    idle = f"{idle_s:.0f} s" if idle_s < 60 else f"{idle_s / 60:.0f} min"
    return (
        f"running at {found.url} ({found.model}, pid {found.server_pid}), idle for {idle}; "
        f"stops after {found.idle_minutes:g} min idle"
    )


def doctor_checks() -> list[Check]:
    """`deskloop doctor`'s line for the resident model server (never a failure)."""
    from deskloop.screen.doctor import Check  # at call time: doctor imports this module lazily

    return [Check("resident model server", "ok", describe(), needed_to="both")]
