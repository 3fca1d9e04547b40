"""The scheduler's lock file: where it is and which pid holds it, read without taking it.

`deskloop.scheduler.lock.SchedulerLock` takes the lock and writes its pid in the file;
this side only reads, so the routines API can say whether a scheduler is running.
"""

from __future__ import annotations

import fcntl
from pathlib import Path


def lock_path(data_dir: Path) -> Path:
    return data_dir / "scheduler.lock"


def holder_pid(path: Path) -> int | None:
    """The pid of the live scheduler holding `path`, or None when none holds it."""
    try:
        handle = path.open("r", encoding="utf-8")
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = handle.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None
