"""One scheduler per data dir: an advisory lock on a file that also names the holder's pid.

Where the file is and reading who holds it is routines' state (`deskloop.routines.lock_file`);
taking the lock is the scheduler's, here.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from deskloop.errors import DeskloopError
from deskloop.routines.lock_file import holder_pid


class SchedulerRunning(DeskloopError):
    """Another scheduler holds the lock for this data dir."""


class SchedulerLock:
    """Held while `deskloop scheduler` runs; the kernel drops it when the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            holder = holder_pid(self.path)
            who = f" (pid {holder})" if holder else ""
            raise SchedulerRunning(
                f"a scheduler is already running for this data dir{who}; one is enough "
                "(stop it first to start another)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> SchedulerLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
