"""`deskloop bench tasks`: short desktop tasks done end to end by `deskloop run` on the
embedded model, each checked by reading the app's state through AT-SPI, not the agent.

Two configurations in one run, each on a fresh virtual desktop (gtk3-widget-factory,
gtk3-demo, Mousepad): "grounded" (the defaults: ids and apps sent as enums, the first
observation of the window the task names) and "baseline" (both switched off with
DESKLOOP_AGENT_GROUNDED_CALLS=false and DESKLOOP_AGENT_TARGET_NAMED_WINDOW=false). Before
each task the focus is put on another app than the one the task names, as when a user
types the task in a terminal. Per task: success, turns, tokens, seconds, calls refused for
bad arguments, and whether the session ended on repeated failures.

Setup, the same for both configurations: one `deskloop serve` on the embedded model for
the whole run (what `deskloop run` would start itself; kept resident so the identical
system prompt and tools stay in its prefix cache between tasks), every turn a tool call
(`agent.tool_calls` = required, as with the embedded model), and only the screen and
followup tool families on, so a 2-core machine prefills a short prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from deskloop.agent.endpoint import EmbeddedServer
from deskloop.screen.actions import ScreenSession
from deskloop.screen.backends.atspi.backend import AtspiBackend
from deskloop.screen.tree import Element, Snapshot
from deskloop.screen.virtual_desktop import TEST_APPS, AppSpec, VirtualDesktop
from deskloop.store import Store

APPS = {spec.atspi_name: spec for spec in TEST_APPS}
# Families switched off for the bench (the screen and followup families stay on).
OFF_FAMILIES = ("sql", "files", "graph", "observer", "preferences", "speech",
                "browser_profile", "permissions", "routines", "browser")
FACTORY, DEMO, EDITOR = "gtk3-widget-factory", "gtk3-demo", "mousepad"
Check = Callable[[Snapshot, Snapshot], bool]


def enabled(snapshot: Snapshot, role: str, name: str | None = None) -> list[Element]:
    return [
        e
        for e in snapshot
        if e.role == role
        and (name is None or e.name == name)
        and "disabled" not in e.states
        and e.box is not None
        and not e.box.is_empty
    ]


def count(snapshot: Snapshot, role: str, name: str | None, state: str) -> int:
    return sum(state in e.states for e in enabled(snapshot, role, name))


def more(role: str, name: str | None, state: str) -> Check:
    return lambda before, after: count(after, role, name, state) > count(before, role, name, state)


def fewer(role: str, name: str | None, state: str) -> Check:
    return lambda before, after: count(after, role, name, state) < count(before, role, name, state)


def plain_radio_checked(before: Snapshot, after: Snapshot) -> bool:
    """The enabled radiobutton that was neither checked nor mixed is checked now."""
    wanted = [e.id for e in enabled(before, "radio", "radiobutton") if not e.states & {"checked", "mixed"}]
    return any("checked" in after.elements[i].states for i in wanted if i in after.elements)


def some_text(role: str, text: str, *, exact: bool = False) -> Check:
    def check(before: Snapshot, after: Snapshot) -> bool:
        values = [(e.value or "").strip() for e in enabled(after, role)]
        return any(v == text if exact else text.lower() in v.lower() for v in values)

    return check


def spin_is(number: float) -> Check:
    def check(before: Snapshot, after: Snapshot) -> bool:
        for e in enabled(after, "spin"):
            try:
                if abs(float(e.value or "nan") - number) < 1e-6:
                    return True
            except ValueError:
                continue
        return False

    return check


def selected(role: str, name: str) -> Check:
    return lambda before, after: any("selected" in e.states for e in enabled(after, role, name))


def checked(role: str, name: str) -> Check:
    return lambda before, after: any("checked" in e.states for e in enabled(after, role, name))


@dataclass(frozen=True)
class Task:
    key: str
    app: str  # the app whose state is checked (and that the task names)
    text: str
    widget: str
    check: Check


TASKS = [
    Task("factory-check", FACTORY, "Tick the unticked checkbutton in the widget factory.",
         "check box", more("check", "checkbutton", "checked")),
    Task("factory-uncheck", FACTORY, "In gtk3-widget-factory, clear the ticked checkbutton.",
         "check box", fewer("check", "checkbutton", "checked")),
    Task("factory-radio", FACTORY, "Select the radiobutton that is not selected yet in the "
         "Widget Factory.", "radio button", plain_radio_checked),
    Task("factory-toggle", FACTORY, "Press the togglebutton in the widget factory.",
         "toggle button", more("toggle", "togglebutton", "checked")),
    Task("factory-entry", FACTORY, "Type hello into the empty entry of the widget factory.",
         "entry", some_text("entry", "hello")),
    Task("factory-replace", FACTORY, "In the widget factory, replace the text entry with "
         "the word deskloop.", "entry", some_text("entry", "deskloop", exact=True)),
    Task("factory-spin", FACTORY, "Set the spin button of the widget factory to 42.",
         "spin button", spin_is(42)),
    Task("factory-page", FACTORY, "Show Page 3 of the widget factory.", "page switcher",
         checked("radio", "Page 3")),
    Task("factory-tab", FACTORY, "Open the tab named page 2 in gtk3-widget-factory.", "tab",
         more("tab", "page 2", "selected")),
    Task("editor-type", EDITOR, "Type hello world into Mousepad.", "text area",
         some_text("entry", "hello world")),
    Task("editor-write", EDITOR, "Write the words deskloop was here in the Mousepad window.",
         "text area", some_text("entry", "deskloop was here")),
    Task("editor-menu", EDITOR, "Open the Edit menu of Mousepad.", "menu",
         selected("menu", "Edit")),
    Task("demo-tab", DEMO, "Show the Source tab in gtk3-demo.", "tab", selected("tab", "Source")),
    Task("demo-select", DEMO, "In the GTK+ Code Demos window, select the Assistant demo.",
         "list row", selected("cell", "Assistant")),
]


@dataclass
class Outcome:
    mode: str
    task: str
    widget: str
    success: bool
    turns: int
    input_tokens: int
    output_tokens: int
    seconds: float
    bad_arguments: int
    end_reason: str


class Desk:
    """The bench's own view of the desktop: reads state and puts apps back between tasks."""

    def __init__(self, desktop: VirtualDesktop, session: ScreenSession) -> None:
        self.desktop = desktop
        self.session = session

    @classmethod
    async def open(cls, desktop: VirtualDesktop) -> Desk:
        return cls(desktop, ScreenSession(await AtspiBackend.connect()))

    async def read(self, app: str) -> Snapshot:
        result = await self.session.observe(app=app)
        assert result.snapshot is not None
        return result.snapshot

    async def reset(self, task: Task) -> None:
        """Menus closed, the widget factory on Page 1, the editor empty; focus elsewhere."""
        editor = await self.read(EDITOR)
        await self.session.press_keys("Escape")
        for element in enabled(editor, "entry"):
            await self.session.set_value(element.id, "")
        factory = await self.read(FACTORY)
        for page in enabled(factory, "radio", "Page 1"):
            if "checked" not in page.states:
                await self.session.click(page.id)
        # Focus an app the task does not name: the agent must find its window.
        other: AppSpec = APPS[FACTORY] if task.app == EDITOR else APPS[EDITOR]
        await asyncio.to_thread(self.desktop.focus, other)

    async def close(self) -> None:
        await self.session.backend.close()


def session_figures(home: Path) -> tuple[int, int, int, int, str]:
    """Turns, input and output tokens, calls refused for bad arguments, and end reason."""
    os.environ["DESKLOOP_HOME"] = str(home)
    try:
        with Store.open() as store:
            sessions = store.sessions()
            if not sessions:
                return 0, 0, 0, 0, "no session"
            record = sessions[0]
            usage = store.usage(record.id)
            calls = store.tool_calls(record.id)
            bad = sum(call.status == "bad_input" for call in calls)
            tokens_in = sum(u.input_tokens + u.cache_read_tokens for u in usage)
            return (len(usage), tokens_in, sum(u.output_tokens for u in usage), bad,
                    record.end_reason or "")
    finally:
        os.environ.pop("DESKLOOP_HOME", None)


async def run_task(
    desk: Desk, task: Task, mode: str, folder: Path, args: argparse.Namespace
) -> Outcome:
    await desk.reset(task)
    before = await desk.read(task.app)
    home = folder / f"{mode}-{task.key}"
    env = {
        **desk.desktop.env,
        "DESKLOOP_HOME": str(home),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "DESKLOOP_AGENT_TOOL_CALLS": "required",
        **{f"DESKLOOP_TOOLS_{name.upper()}": "false" for name in OFF_FAMILIES},
    }
    if mode == "baseline":
        env["DESKLOOP_AGENT_GROUNDED_CALLS"] = "false"
        env["DESKLOOP_AGENT_TARGET_NAMED_WINDOW"] = "false"
    command = [
        sys.executable, "-m", "deskloop", "run", task.text, "--endpoint", args.endpoint,
        "--max-turns", str(args.max_turns), "--max-seconds", str(args.max_seconds),
    ]
    started = time.monotonic()
    try:
        done = await asyncio.to_thread(
            subprocess.run, command, env=env, capture_output=True, text=True,
            timeout=args.max_seconds + 120,
        )
        transcript = done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        transcript = f"timed out: {exc}"
    seconds = time.monotonic() - started
    (folder / f"{mode}-{task.key}.txt").write_text(transcript)
    await asyncio.sleep(0.3)  # synthetic input lands late under load
    after = await desk.read(task.app)
    turns, tokens_in, tokens_out, bad, reason = session_figures(home)
    return Outcome(mode, task.key, task.widget, task.check(before, after), turns, tokens_in,
                   tokens_out, round(seconds, 1), bad, reason)


async def run_mode(mode: str, tasks: list[Task], folder: Path, args: argparse.Namespace) -> list[Outcome]:
    desktop = await asyncio.to_thread(VirtualDesktop.start)
    outcomes = []
    try:
        await asyncio.to_thread(desktop.wait_for_trees)
        with desktop.environment():
            desk = await Desk.open(desktop)
            try:
                for task in tasks:
                    outcome = await run_task(desk, task, mode, folder, args)
                    mark = "ok  " if outcome.success else "FAIL"
                    print(f"  [{mark}] {mode:<8} {task.key:<16} {outcome.turns} turns "
                          f"{outcome.seconds:6.1f} s  {outcome.end_reason}", flush=True)
                    outcomes.append(outcome)
            finally:
                await desk.close()
    finally:
        desktop.stop()
    return outcomes


def report(outcomes: list[Outcome], modes: list[str]) -> None:
    print(f"\n{'task':<16} {'widget':<14} " + "  ".join(f"{m:>30}" for m in modes))
    by = {(o.mode, o.task): o for o in outcomes}
    for task in dict.fromkeys(o.task for o in outcomes):
        cells = []
        for mode in modes:
            o = by.get((mode, task))
            cells.append(
                f"{'ok' if o.success else 'no':>3} {o.turns:>2}t {o.input_tokens:>6}+{o.output_tokens:<4} "
                f"{o.seconds:6.1f}s b{o.bad_arguments}" if o else f"{'-':>30}"
            )
        widget = next(o.widget for o in outcomes if o.task == task)
        print(f"{task:<16} {widget:<14} " + "  ".join(f"{c:>30}" for c in cells))
    print()
    rates = {}
    for mode in modes:
        mine = [o for o in outcomes if o.mode == mode]
        if not mine:
            continue
        rates[mode] = sum(o.success for o in mine) / len(mine)
        repeated = sum(o.end_reason == "repeated_failure" for o in mine)
        print(
            f"{mode:<8}: {sum(o.success for o in mine)}/{len(mine)} tasks done "
            f"({100 * rates[mode]:.0f}%), median {statistics.median(o.turns for o in mine):g} turns, "
            f"median {statistics.median(o.seconds for o in mine):.1f} s, "
            f"{sum(o.bad_arguments for o in mine)} calls refused for bad arguments, "
            f"{repeated} sessions ended on repeated failures"
        )
    if "grounded" in rates and "baseline" in rates:
        base = rates["baseline"]
        ratio = f"{rates['grounded'] / base:.1f}x" if base else "baseline 0"
        print(f"grounded / baseline success: {ratio}")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-turns", type=int, default=6)
    parser.add_argument("--max-seconds", type=float, default=120)
    parser.add_argument("--only", action="append", help="run only this task key (repeatable)")
    parser.add_argument("--mode", choices=("grounded", "baseline"), action="append")
    parser.add_argument("--json", type=Path, help="write every outcome here as JSON")
    parser.add_argument("--keep", type=Path, help="keep transcripts and stores in this folder")
    parser.add_argument("--endpoint", help="a running server to use instead of the embedded one")
    args = parser.parse_args()
    tasks = [t for t in TASKS if not args.only or t.key in args.only]
    modes = args.mode or ["grounded", "baseline"]
    folder = args.keep or Path(tempfile.mkdtemp(prefix="deskloop-bench-tasks-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"{len(tasks)} tasks x {len(modes)} configurations on the embedded model; "
          f"--max-turns {args.max_turns} --max-seconds {args.max_seconds:g}; transcripts in {folder}")
    outcomes: list[Outcome] = []
    if args.endpoint:
        for mode in modes:
            outcomes += await run_mode(mode, tasks, folder, args)
    else:
        with EmbeddedServer() as server:
            server.spawn()
            args.endpoint = await asyncio.to_thread(server.wait_until_ready)
            for mode in modes:
                outcomes += await run_mode(mode, tasks, folder, args)
    report(outcomes, modes)
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
