"""The recorder with a fake event source: steps are announced, saved, and kept on failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from deskloop.recordings.recorder import Recorder
from deskloop.recordings.recording import RecordingError, RecordingFiles, Step
from deskloop.screen.recording_events import ElementEvent, ElementFacts, PointerEvent, RecordedEvent

BOLD = ElementFacts(app="editor", pid=1, role="check", name="Bold", window_title="Editor")


class FakeEventSource:
    """Hands out a fixed list of events, then waits for `stop()` (or fails, if told to)."""

    def __init__(self, events: list[RecordedEvent], fail: bool = False) -> None:
        self.queued = events
        self.fail = fail
        self.stopped = asyncio.Event()

    async def events(self) -> AsyncIterator[RecordedEvent]:
        for event in self.queued:
            yield event
        if self.fail:
            raise ConnectionError("the accessibility bus went away")
        await self.stopped.wait()

    async def stop(self) -> None:
        self.stopped.set()


def clicks(count: int) -> list[RecordedEvent]:
    events: list[RecordedEvent] = []
    for number in range(count):
        events.append(PointerEvent("press", 5, 5, 1, float(number), BOLD))
        events.append(
            ElementEvent("checked" if number % 2 == 0 else "unchecked", BOLD, number + 0.01)
        )
    return events


async def test_steps_are_announced_and_saved(tmp_path: Path) -> None:
    heard: list[tuple[int, Step]] = []
    files = RecordingFiles(tmp_path)
    stop = asyncio.Event()
    recorder = Recorder(
        FakeEventSource(clicks(2)), "bold", files, on_step=lambda n, s: heard.append((n, s))
    )
    running = asyncio.create_task(recorder.run(stop))
    await asyncio.sleep(0.05)
    stop.set()
    recording = await running
    assert [number for number, _ in heard] == [1, 2]
    assert files.load("bold") == recording
    assert [step.postcondition.kind for step in recording.steps if step.postcondition] == [
        "checked",
        "unchecked",
    ]


async def test_a_source_that_fails_keeps_what_was_recognised(tmp_path: Path) -> None:
    files = RecordingFiles(tmp_path)
    recorder = Recorder(FakeEventSource(clicks(1), fail=True), "bold", files)
    with pytest.raises(RecordingError, match=r"recognised until then \(1 step\) is saved"):
        await recorder.run(asyncio.Event())
    assert len(files.load("bold").steps) == 1
