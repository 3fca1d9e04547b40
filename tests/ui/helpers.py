"""A real `deskloop ui` process for the tests that need one, and the in-process address."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

PORT = 8890
BASE = f"http://127.0.0.1:{PORT}"


@contextmanager
def ui_process(home: Path, *extra: str) -> Iterator[str]:
    """`deskloop ui --port 0 --no-open` with its own DESKLOOP_HOME; yields its base URL."""
    env = {
        **os.environ,
        "DESKLOOP_HOME": str(home),
        "DESKLOOP_AGENT_MODEL": "claude-deskloop-test",
        # No screen in these sessions: the first message goes without an observation.
        "DESKLOOP_AGENT_OBSERVE_FIRST": "false",
    }
    env.pop("DISPLAY", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "deskloop", "ui", "--port", "0", "--no-open", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    errors: list[str] = []
    # Drained all along, so a chatty stderr never blocks the server; the tail explains failures.
    drain = threading.Thread(target=_keep_tail, args=(process.stderr, errors), daemon=True)
    drain.start()
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()
        if not ready.startswith("deskloop ui at http://"):
            process.kill()
            process.wait(timeout=10)
            drain.join(timeout=5)
            raise AssertionError(f"deskloop ui did not start: {ready!r} {''.join(errors)}")
        yield ready.rsplit(" at ", 1)[1].strip()
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _keep_tail(stream: IO[str] | None, lines: list[str]) -> None:
    if stream is None:
        return
    for line in stream:
        lines.append(line)
        del lines[:-40]
