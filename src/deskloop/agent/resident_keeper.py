"""The keeper of the resident model server: a detached process that owns `deskloop serve`.

It starts the server, writes where it listens to `server.json` in the state folder, and
stops it after `server.idle_minutes` with no request and no command holding it
(`deskloop.agent.resident_server` takes and checks those holds). The server is untouched:
activity is what it logs per request on stderr and what /health says of its queue.

Run as `python -m deskloop.agent.resident_keeper FOLDER IDLE_MINUTES FINGERPRINT -- ARGS`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import httpx

from deskloop.agent.child_server import die_with_parent, read_ready_line

# Loading the model from disk; a first run may also convert or page it in.
START_TIMEOUT_S = 300.0
HEALTH_TIMEOUT_S = 2.0
STATE_FILE = "server.json"
START_LOCK = "start.lock"
IN_USE_LOCK = "in-use.lock"
ACTIVITY_FILE = "activity"
LOG_FILE = "server.log"
READY = " at http"
# server/app.py logs one line per answered request: `deskloop.server POST /v1/messages -> 200`.
REQUEST_LINE = re.compile(r"deskloop\.server (GET|POST|PUT|PATCH|DELETE) (\S+) -> \d{3}")


def poll_interval(idle_s: float) -> float:
    """How often the keeper looks: often enough to stop near the idle time, never busily."""
    return min(2.0, max(0.2, idle_s / 4))


def write_state(folder: Path, state: dict[str, Any]) -> None:
    tmp = folder / f"{STATE_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(state), encoding="utf-8")
    tmp.replace(folder / STATE_FILE)


def read_state(folder: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def touch(path: Path) -> None:
    path.touch()
    os.utime(path)


class Keeper:
    """One server, from start to its idle stop (or SIGTERM, or its own death)."""

    def __init__(self, folder: Path, idle_s: float, fingerprint: str, serve_args: list[str]):
        self.folder = folder
        self.idle_s = idle_s
        self.fingerprint = fingerprint
        self.serve_args = serve_args
        self.stop = threading.Event()
        self.last_active = time.monotonic()
        self.server: subprocess.Popen[str] | None = None

    def mark_active(self) -> None:
        self.last_active = time.monotonic()
        with contextlib.suppress(OSError):
            touch(self.folder / ACTIVITY_FILE)

    def start(self, say: IO[str]) -> str | None:
        """Start the server; its URL once ready, or None (what went wrong is said on `say`)."""
        command = [sys.executable, "-m", "deskloop", "serve", "--host", "127.0.0.1",
                   "--port", "0", *self.serve_args]  # fmt: skip
        self.server = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        assert self.server.stdout is not None and self.server.stderr is not None
        tail: list[str] = []
        threading.Thread(target=self._read_log, args=(self.server.stderr, tail), daemon=True).start()
        line = read_ready_line(self.server.stdout, START_TIMEOUT_S)
        if READY not in line:
            self.stop_server()
            said = "; ".join(tail[-5:]) or "no output"
            print(f"failed: {said}", file=say, flush=True)
            return None
        url = line.rsplit(" at ", 1)[1].strip()
        model = line.removeprefix("deskloop: serving ").split(" (", 1)[0].strip()
        self.mark_active()
        write_state(self.folder, {
            "keeper_pid": os.getpid(),
            "server_pid": self.server.pid,
            "url": url,
            "model": model,
            "fingerprint": self.fingerprint,
            "idle_minutes": self.idle_s / 60,
            "started_at": time.time(),
        })  # fmt: skip
        print(line.strip(), file=say, flush=True)
        return url

    def _read_log(self, stream: IO[str], tail: list[str]) -> None:
        with (self.folder / LOG_FILE).open("a", encoding="utf-8") as log:
            for line in stream:
                log.write(line)
                log.flush()
                tail.append(line.rstrip())
                del tail[:-20]
                found = REQUEST_LINE.search(line)
                if found and found.group(2) != "/health":  # the keeper's own polls
                    self.mark_active()

    def watch(self, url: str) -> None:
        """Until the server dies, a SIGTERM, or the idle time passes with nobody holding it."""
        interval = poll_interval(self.idle_s)
        with httpx.Client(timeout=HEALTH_TIMEOUT_S) as client:
            while not self.stop.wait(interval):
                assert self.server is not None
                if self.server.poll() is not None:
                    return
                if _held(self.folder):
                    self.mark_active()
                    continue
                if time.monotonic() - self.last_active < self.idle_s:
                    continue
                # Only now: a request still being answered has logged nothing yet.
                if _queue_in_use(client, url):
                    self.mark_active()
                    continue
                with _exclusive_now(self.folder / IN_USE_LOCK) as nobody_holds:
                    if nobody_holds:  # held through the stop: a command waits, then starts anew
                        self.forget()
                        self.stop_server()
                        return

    def forget(self) -> None:
        state = read_state(self.folder)
        if state is not None and state.get("keeper_pid") == os.getpid():
            with contextlib.suppress(OSError):
                (self.folder / STATE_FILE).unlink()

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()


def _queue_in_use(client: httpx.Client, url: str) -> bool:
    """Whether /health says a request is being answered or waits."""
    try:
        health = client.get(f"{url}/health").json()
    except (httpx.HTTPError, ValueError):
        return False
    return isinstance(health, dict) and bool(health.get("busy") or health.get("waiting"))


def _held(folder: Path) -> bool:
    """Whether some command holds the server now (a shared lock on in-use.lock)."""
    with _exclusive_now(folder / IN_USE_LOCK) as free:
        return not free


@contextlib.contextmanager
def _exclusive_now(path: Path) -> Any:
    """Yields whether the exclusive lock was had without waiting; held for the block."""
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main(argv: list[str]) -> int:
    folder, idle_minutes, fingerprint = Path(argv[0]), float(argv[1]), argv[2]
    serve_args = argv[4:] if len(argv) > 3 and argv[3] == "--" else argv[3:]
    keeper = Keeper(folder, idle_minutes * 60, fingerprint, serve_args)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: keeper.stop.set())
    say = sys.stdout
    url = keeper.start(say)
    # The starting command reads one line and goes; nothing more is written there.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    if url is None:
        return 1
    try:
        keeper.watch(url)
    finally:
        keeper.forget()
        keeper.stop_server()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
