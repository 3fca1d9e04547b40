"""Runs an event source, collapses what it hears into steps, and saves the recording.

Only one recorder runs at a time: it holds `<recordings>/.recorder.lock` with its pid, so
`deskloop record --stop` (or the web UI) can ask it to stop, and a second one is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from deskloop.recordings.collapse import Collapser
from deskloop.recordings.recording import Recording, RecordingError, RecordingFiles, Step
from deskloop.screen.recording_events import EventSource

SETTLE_EVERY_S = 0.25
LOCK_NAME = ".recorder.lock"

StepHandler = Callable[[int, Step], None]


class RecorderLock:
    """The one-recorder-at-a-time lock; its file holds the recording pid and name."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._handle: IO[str] | None = None

    def take(self, name: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            held = handle.read().split()
            handle.close()
            what = f" ({held[1]!r}, pid {held[0]})" if len(held) > 1 else ""
            raise RecordingError(
                f"a recording is already running{what}: stop it with `deskloop record --stop` "
                "(or Ctrl-C where it runs) before starting another"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()} {name}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def holder(self) -> tuple[int, str] | None:
        """(pid, recording name) of the running recorder, or None."""
        try:
            handle = self.path.open("r", encoding="utf-8")
        except FileNotFoundError:
            return None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                held = handle.read().split()
                if held and held[0].isdigit():
                    return int(held[0]), held[1] if len(held) > 1 else ""
                return -1, ""
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None


def stop_running_recorder(folder: Path) -> tuple[int, str]:
    """Ask the running recorder to stop and save (as Ctrl-C does); returns its (pid, name)."""
    held = RecorderLock(folder).holder()
    if held is None or held[0] <= 0:
        raise RecordingError("no recording is running: start one with `deskloop record NAME`")
    os.kill(held[0], signal.SIGINT)
    return held


class Recorder:
    """One recording: listen until `stop` is set, then save what was shown as steps."""

    def __init__(
        self,
        source: EventSource,
        name: str,
        files: RecordingFiles,
        *,
        only_app: str | None = None,
        apps_at_start: frozenset[str] = frozenset(),
        on_step: StepHandler | None = None,
    ) -> None:
        self.source = source
        self.name = name
        self.files = files
        self.collapser = Collapser(only_app=only_app, apps_at_start=apps_at_start)
        self.on_step = on_step

    def _announce(self, steps: list[Step]) -> None:
        if self.on_step is None:
            return
        for step in steps:
            self.on_step(self.collapser.steps.index(step) + 1, step)

    async def _listen(self) -> None:
        async for event in self.source.events():
            self._announce(self.collapser.feed(event))

    async def _settle(self) -> None:
        while True:
            await asyncio.sleep(SETTLE_EVERY_S)
            self._announce(self.collapser.settle(time.monotonic()))

    async def run(self, stop: asyncio.Event) -> Recording:
        """Record until `stop` is set (or the source ends); save and return the recording."""
        listening = asyncio.create_task(self._listen())
        settling = asyncio.create_task(self._settle())
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({listening, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            settling.cancel()
            await self.source.stop()
            # The source hands out what it heard before stopping, then ends.
            finished, _ = await asyncio.wait({listening}, timeout=5)
            if not finished:
                listening.cancel()
        self._announce(self.collapser.finish())
        recording = Recording(
            name=self.name,
            steps=tuple(self.collapser.steps),
            apps=tuple(self.collapser.apps),
        )
        path = self.files.save(recording)
        failure = listening.exception() if listening.done() and not listening.cancelled() else None
        if failure is not None:
            count = len(recording.steps)
            raise RecordingError(
                f"the recording stopped early ({failure}); what was recognised until then "
                f"({count} step{'s' * (count != 1)}) is saved in {path}"
            ) from failure
        return recording
