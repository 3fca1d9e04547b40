"""Starting a `deskloop serve` child: dying with its parent, and reading its ready line.

Shared by the per-process embedded server (agent/endpoint.py) and the resident server's
keeper (agent/resident_keeper.py); it imports nothing heavy, so the keeper stays light.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from typing import IO


def die_with_parent() -> None:
    """Linux: the kernel sends the child SIGTERM when its parent dies, even by SIGKILL.

    prctl(2) PR_SET_PDEATHSIG: the signal follows the death of the *thread* that forked,
    so the child is spawned from a thread that lives as long as its parent.
    """
    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def read_ready_line(stdout: IO[str], timeout_s: float) -> str:
    """The server's first stdout line ("... at http://..."), or "" if none came in time;
    the pipe is drained for the server's lifetime after it, so the server never blocks."""
    first: list[str] = []
    ready = threading.Event()

    def read() -> None:
        first.append(stdout.readline())
        ready.set()
        for _ in stdout:
            pass

    threading.Thread(target=read, daemon=True).start()
    ready.wait(timeout_s)
    return first[0] if first else ""
