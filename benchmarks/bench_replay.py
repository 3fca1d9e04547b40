"""Replay benchmark: 10 demonstrations recorded once, each replayed 10 times with the
windows moved between replays; success rate, median time per step, and the share of steps
done through the accessibility API rather than synthetic input.

Starts its own Xvfb, session bus and the GTK3 test apps (gtk3-widget-factory, gtk3-demo,
mousepad). Each demonstration is done the way a person does it, with xdotool (the pointer
and the keys, never the accessibility API), while the real recorder listens, and puts its
apps back as it found them, so every replay starts from the same state. Prints figures
(the median per action too); asserts nothing. Targets (issue 22): success at least 98 %,
median at most 150 ms a step. The model route takes seconds a step on the embedded model:
with --model-steps N (default 2), the check-box demonstration's first step is made to lose
its element (its name changed, its other locators gone) and the embedded SmolLM2, through
a `deskloop serve` child, heals it N times; each healed step's seconds are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from deskloop.agent.endpoint import EmbeddedServer
from deskloop.agent.heal_step import ModelHealer
from deskloop.recordings.recorder import Recorder
from deskloop.recordings.recording import Locator, Recording, RecordingFiles
from deskloop.recordings.replay import Replayer
from deskloop.recordings.replay_report import ReplayReport
from deskloop.screen.actions import ScreenSession
from deskloop.screen.backend import Target
from deskloop.screen.backends.atspi.backend import AtspiBackend
from deskloop.screen.backends.atspi.events import AtspiEventSource
from deskloop.screen.tree import NodeData
from deskloop.screen.virtual_desktop import TEST_APPS, VirtualDesktop

FACTORY, DEMO, MOUSEPAD = "gtk3-widget-factory", "gtk3-demo", "mousepad"
# Where each app's window goes before each replay, in turn (x, y offsets from its place).
MOVES = ((0, 0), (40, 30), (80, 10), (20, 60), (60, 40))
PAUSE_S = 0.4  # between a person's actions, so each lands before the next


class Person:
    """Acts the way a person does: xdotool's pointer and keys. The backend is only its
    eyes, to find where things are on screen."""

    def __init__(self, desktop: VirtualDesktop, backend: AtspiBackend) -> None:
        self.desktop = desktop
        self.backend = backend

    async def run(self, *args: str) -> None:
        await asyncio.to_thread(self.desktop.xdotool, *args)
        await asyncio.sleep(PAUSE_S)

    async def nodes(self, app: str) -> list[NodeData]:
        return list((await self.backend.read(Target(app=app))).nodes)

    async def find(self, app: str, role: str, name: str, number: int = 0) -> NodeData:
        for _ in range(30):
            found = [
                n
                for n in await self.nodes(app)
                if n.role == role and n.name.strip() == name and n.box is not None
            ]
            if len(found) > number:
                return found[number]
            await asyncio.sleep(0.1)
        raise RuntimeError(f"no {role} {name!r} number {number + 1} on screen in {app}")

    async def click(self, app: str, role: str, name: str, number: int = 0) -> None:
        node = await self.find(app, role, name, number)
        assert node.box is not None
        x, y = node.box.center
        await self.run("mousemove", str(x), str(y))
        await self.run("click", "1")

    async def empty_entry(self) -> None:
        """widget-factory's first empty one-line field."""
        for node in await self.nodes(FACTORY):
            if (
                node.role == "entry"
                and not node.value
                and node.box is not None
                and not {"disabled", "multiline"} & node.states
            ):
                x, y = node.box.center
                await self.run("mousemove", str(x), str(y))
                await self.run("click", "1")
                return
        raise RuntimeError("widget-factory shows no empty field")

    async def document(self) -> None:
        await self.click(MOUSEPAD, "entry", "")

    async def menu(self, *path: str) -> None:
        await self.click(MOUSEPAD, "menu", path[0])
        for name in path[1:]:
            await self.click(MOUSEPAD, "menuitem", name)

    async def type(self, text: str) -> None:
        await self.run("type", "--delay", "30", text)

    async def key(self, chord: str) -> None:
        await self.run("key", chord)


Demonstration = Callable[[Person], Awaitable[None]]


async def check_box(p: Person) -> None:
    await p.click(FACTORY, "check", "checkbutton", 4)
    await p.click(FACTORY, "check", "checkbutton", 4)


async def radio(p: Person) -> None:
    await p.click(FACTORY, "radio", "radiobutton", 4)
    await p.click(FACTORY, "radio", "radiobutton", 5)


async def entry(p: Person) -> None:
    await p.empty_entry()
    await p.type("anna@example.com")
    await p.document()  # the field's step ends when the focus leaves it


async def row(p: Person) -> None:
    await p.click(DEMO, "cell", "Assistant")
    await p.click(DEMO, "cell", "Application Class")


async def menu(p: Person) -> None:
    await p.menu("View", "Statusbar")
    await p.menu("View", "Statusbar")


async def chord(p: Person) -> None:
    await p.document()
    await p.key("ctrl+f")
    await p.key("Escape")


async def two_apps(p: Person) -> None:
    await p.click(FACTORY, "check", "checkbutton", 4)
    await p.document()
    await p.type("two apps")
    await p.click(FACTORY, "check", "checkbutton", 4)


async def page(p: Person) -> None:
    await p.click(FACTORY, "radio", "Page 2")
    await p.click(FACTORY, "radio", "Page 1")


async def rows(p: Person) -> None:
    for name in ("Builder", "Clipboard", "Application Class"):
        await p.click(DEMO, "cell", name)


async def form(p: Person) -> None:
    await p.click(FACTORY, "radio", "radiobutton", 4)
    await p.click(FACTORY, "check", "checkbutton", 4)
    await p.click(FACTORY, "check", "checkbutton", 4)
    await p.click(FACTORY, "radio", "radiobutton", 5)


DEMONSTRATIONS: dict[str, Demonstration] = {
    "check-box": check_box,
    "radio": radio,
    "entry": entry,
    "row": row,
    "menu": menu,
    "chord": chord,
    "two-apps": two_apps,
    "page": page,
    "rows": rows,
    "form": form,
}


async def record_all(desktop: VirtualDesktop, folder: Path) -> list[Recording]:
    """Each demonstration done once by the person while the real recorder listens."""
    files = RecordingFiles(folder)
    made: list[Recording] = []
    backend = await AtspiBackend.connect()
    try:
        person = Person(desktop, backend)
        for name, demonstrate in DEMONSTRATIONS.items():
            source = await AtspiEventSource.connect(None)
            running = frozenset(app.name for app in await source.backend.list_apps())
            recorder = Recorder(source, name, files, apps_at_start=running)
            stop = asyncio.Event()
            listening = asyncio.create_task(recorder.run(stop))
            try:
                await asyncio.sleep(0.3)
                await demonstrate(person)
                await asyncio.sleep(1.0)
            finally:
                stop.set()
            await listening
            made.append(files.load(name))
    finally:
        await backend.close()
    return made


def move_windows(desktop: VirtualDesktop, turn: int) -> None:
    dx, dy = MOVES[turn % len(MOVES)]
    for spec in TEST_APPS:
        window = desktop.wait_for_window(spec)  # back to its place first
        x, y = spec.position
        desktop.xdotool("windowmove", "--sync", window, str(x + dx), str(y + dy))


def lost_first_step(recording: Recording) -> Recording:
    """The recording as if its first element had been renamed: nothing finds it."""
    first = recording.steps[0]
    gone = Locator("role_name", role=first.locators[0].role, name="Renamed since")
    return replace(recording, steps=(replace(first, locators=(gone,)), *recording.steps[1:]))


async def model_route(recording: Recording, times: int) -> dict[str, object]:
    """The lost first step healed by the embedded model (`deskloop serve`), `times` times."""
    seconds: list[float] = []
    healed = 0
    with EmbeddedServer() as server, tempfile.TemporaryDirectory() as folder:
        url = await asyncio.to_thread(server.start)
        files = RecordingFiles(Path(folder))
        lost = lost_first_step(recording)
        files.save(lost)
        backend = await AtspiBackend.connect()
        try:
            for _ in range(times):
                replayer = Replayer(
                    ScreenSession(backend),
                    files=files,
                    step_timeout_s=0.3,
                    healer=ModelHealer(endpoint=url),
                )
                report = await replayer.replay(lost)
                first = report.outcomes[0]
                healed += first.status == "healed"
                seconds.append(first.duration_s)
        finally:
            await backend.close()
    return {
        "model_steps": times,
        "model_healed": healed,
        "model_median_s_per_step": round(statistics.median(seconds), 1),
        "model_s_per_step": [round(s, 1) for s in seconds],
    }


async def measure(desktop: VirtualDesktop, rounds: int, model_steps: int) -> dict[str, object]:
    recorded_at = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as folder:
        recordings = await record_all(desktop, Path(folder))
    recording_s = time.monotonic() - recorded_at
    backend = await AtspiBackend.connect()
    reports: list[ReplayReport] = []
    try:
        for recording in recordings:
            for turn in range(rounds):
                move_windows(desktop, turn)
                replayer = Replayer(ScreenSession(backend))
                reports.append(await replayer.replay(recording))
    finally:
        await backend.close()
    outcomes = [o for report in reports for o in report.outcomes]
    acted = [o for o in outcomes if o.via in ("accessibility", "input")]
    failures = [f"{r.recording}: {r.failed.line()}" for r in reports if r.failed is not None]
    by_action: dict[str, list[float]] = {}
    for recording, report in zip(
        (r for r in recordings for _ in range(rounds)), reports, strict=True
    ):
        for outcome in report.outcomes:
            action = recording.steps[outcome.number - 1].action
            by_action.setdefault(action, []).append(outcome.duration_s)
    figures: dict[str, object] = {
        "recorded": {r.name: [s.intent for s in r.steps] for r in recordings},
        "recording_s": round(recording_s, 1),
        "replays": len(reports),
        "success_percent": round(100 * sum(r.ok for r in reports) / len(reports), 1),
        "steps": len(outcomes),
        "median_ms_per_step": round(1000 * statistics.median(o.duration_s for o in outcomes), 1),
        "p90_ms_per_step": round(
            1000 * statistics.quantiles([o.duration_s for o in outcomes], n=10)[-1], 1
        ),
        "median_ms_by_action": {
            action: round(1000 * statistics.median(times), 1)
            for action, times in sorted(by_action.items())
        },
        "accessibility_share_percent": round(
            100 * sum(o.via == "accessibility" for o in acted) / max(1, len(acted)), 1
        ),
        "steps_already_done": sum(o.status == "already" for o in outcomes),
        "failures": failures[:10],
    }
    if model_steps:
        figures.update(await model_route(recordings[0], model_steps))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="replays per demonstration")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--model-steps", type=int, default=2, help="steps healed by the embedded model (0: none)"
    )
    args = parser.parse_args()
    started = time.monotonic()
    desktop = VirtualDesktop.start()
    try:
        desktop.wait_for_trees()
        with desktop.environment():
            figures = asyncio.run(measure(desktop, args.rounds, args.model_steps))
    finally:
        desktop.stop()
    figures["wall_s"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    for key, value in figures.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
