"""Replay recordings written by hand on real GTK3 apps, read back with an independent reader."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from deskloop.recordings.healing import Healed, HealRequest
from deskloop.recordings.recording import (
    Locator,
    PathPart,
    Postcondition,
    Recording,
    RecordingFiles,
    Step,
)
from deskloop.recordings.replay import Replayer
from deskloop.recordings.replay_report import StepOutcome
from deskloop.routines import create_routine
from deskloop.screen.actions import ScreenSession
from deskloop.screen.virtual_desktop import SAMPLE_APP, TEST_APPS, VirtualDesktop
from deskloop.settings import paths
from deskloop.store import Store
from tests.replay.atspi_reader import IndependentReader, Node

pytestmark = pytest.mark.desktop

FACTORY, DEMO, MOUSEPAD = "gtk3-widget-factory", "gtk3-demo", "mousepad"
WINDOW = (PathPart("window", ""),)


def check_box_step(name: str = "checkbutton") -> Step:
    """The fifth check box of widget-factory's first page (enabled, unchecked at start)."""
    return Step(
        "click",
        f"click check box {name!r} in window 'gtk3-widget-factory'",
        app=FACTORY,
        locators=(
            Locator("role_name", role="check", name=name),
            Locator("index", role="check", path=WINDOW, index=4),
        ),
        postcondition=Postcondition("checked"),
    )


def radio_step() -> Step:
    return Step(
        "click",
        "click radio 'radiobutton' in window 'gtk3-widget-factory'",
        app=FACTORY,
        locators=(
            Locator("role_name", role="radio", name="radiobutton"),
            Locator("index", role="radio", path=WINDOW, index=4),
        ),
        postcondition=Postcondition("checked"),
    )


def text_step(text: str) -> Step:
    return Step(
        "set_text",
        f"set text of the document in mousepad to {text!r}",
        app=MOUSEPAD,
        locators=(Locator("index", role="entry", path=WINDOW, index=0),),
        text=text,
        postcondition=Postcondition("text", text),
    )


def row_step(name: str = "Assistant") -> Step:
    return Step(
        "select",
        f"select row {name!r} in gtk3-demo",
        app=DEMO,
        locators=(Locator("role_name", role="cell", name=name),),
        postcondition=Postcondition("selected"),
    )


def recording(name: str, *steps: Step) -> Recording:
    return Recording(name, tuple(steps), apps=tuple(dict.fromkeys(s.app for s in steps)))


def showing(nodes: Sequence[Node], role: str, name: str) -> list[Node]:
    return [n for n in nodes if n.role == role and n.name == name and "showing" in n.states]


async def factory_boxes(reader: IndependentReader, role: str) -> list[Node]:
    found = showing(await reader.nodes(FACTORY), role, role.split()[0] + "button")
    assert len(found) == 6, found
    return found


async def reset_factory(reader: IndependentReader) -> None:
    """The fifth check box unchecked, and the sixth radio checked (as the app starts)."""
    box = (await factory_boxes(reader, "check box"))[4]
    if "checked" in box.states:
        await reader.do_action(box)
    radio = (await factory_boxes(reader, "radio button"))[5]
    if "checked" not in radio.states:
        await reader.do_action(radio)


async def mousepad_text(reader: IndependentReader) -> str:
    texts = [
        n.text for n in await reader.nodes(MOUSEPAD) if n.role == "text" and n.text is not None
    ]
    assert texts, "mousepad shows a text view"
    return texts[0]


async def reset_mousepad(reader: IndependentReader) -> None:
    view = next(n for n in await reader.nodes(MOUSEPAD) if n.role == "text")
    await reader.set_text(view, "")


async def selected_rows(reader: IndependentReader) -> list[str]:
    nodes = await reader.nodes(DEMO)
    return [
        n.name
        for n in nodes
        if n.role == "table cell" and n.name.strip() and "selected" in n.states
    ]


async def reset_demo(desktop: VirtualDesktop, reader: IndependentReader) -> None:
    """gtk3-demo where the fixture put it, its first row selected (a person's click)."""
    demo = desktop.wait_for_window(TEST_APPS[1])
    desktop.xdotool("windowsize", "--sync", demo, "810", "656")
    desktop.xdotool("windowmove", "--sync", demo, "1400", "0")
    desktop.xdotool("windowraise", demo)
    desktop.xdotool("mousemove", "1500", "63", "click", "1")
    for _ in range(50):
        if await selected_rows(reader) == ["Application Class"]:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"gtk3-demo did not reset: {await selected_rows(reader)}")


async def test_a_check_box_and_a_radio_are_set_again(
    session: ScreenSession, reader: IndependentReader
) -> None:
    await reset_factory(reader)

    report = await Replayer(session).replay(recording("boxes", check_box_step(), radio_step()))

    assert report.ok, report.text()
    assert "checked" in (await factory_boxes(reader, "check box"))[4].states
    radios = await factory_boxes(reader, "radio button")
    assert "checked" in radios[4].states
    # Both through the accessibility API, not synthetic clicks.
    assert [o.via for o in report.outcomes] == ["accessibility", "accessibility"]
    await reset_factory(reader)


async def test_replaying_a_check_box_already_checked_leaves_it_checked(
    session: ScreenSession, reader: IndependentReader
) -> None:
    await reset_factory(reader)
    boxes = recording("twice", check_box_step())

    await Replayer(session).replay(boxes)
    again = await Replayer(session).replay(boxes)

    assert again.ok and again.outcomes[0].status == "already", again.text()
    assert "checked" in (await factory_boxes(reader, "check box"))[4].states
    await reset_factory(reader)


async def test_text_goes_into_the_entry_in_one_step(
    session: ScreenSession, reader: IndependentReader
) -> None:
    await reset_mousepad(reader)

    report = await Replayer(session).replay(recording("note", text_step("anna@example.com")))

    assert report.ok, report.text()
    assert await mousepad_text(reader) == "anna@example.com"
    await reset_mousepad(reader)


async def test_a_key_chord_reaches_the_app(
    session: ScreenSession, reader: IndependentReader
) -> None:
    await reset_mousepad(reader)
    entry = text_step("").locators
    steps = (
        text_step("throw this away"),
        Step("keys", "press Ctrl+A", app=MOUSEPAD, locators=entry, text="ctrl+a"),
        Step(
            "keys",
            "press Delete",
            app=MOUSEPAD,
            locators=entry,
            text="Delete",
            postcondition=Postcondition("text", ""),
        ),
    )

    report = await Replayer(session).replay(recording("chord", *steps))

    assert report.ok, report.text()
    assert await mousepad_text(reader) == ""


async def test_a_menu_path_is_chosen(session: ScreenSession, reader: IndependentReader) -> None:
    def statusbar_shown(nodes: Sequence[Node]) -> bool:
        return any(n.role == "statusbar" and "showing" in n.states for n in nodes)

    before = statusbar_shown(await reader.nodes(MOUSEPAD))
    menu = Step(
        "menu", "choose menu View > Statusbar", app=MOUSEPAD, menu_path=("View", "Statusbar")
    )

    report = await Replayer(session).replay(recording("menu", menu))

    assert report.ok, report.text()
    after = statusbar_shown(await reader.nodes(MOUSEPAD))
    assert after is not before
    await Replayer(session).replay(recording("menu", menu))  # back as it was


async def test_a_list_row_is_selected(
    desktop: VirtualDesktop, session: ScreenSession, reader: IndependentReader
) -> None:
    await reset_demo(desktop, reader)

    report = await Replayer(session).replay(recording("row", row_step()))

    assert report.ok, report.text()
    assert await selected_rows(reader) == ["Assistant"]


async def test_two_apps_in_one_recording(session: ScreenSession, reader: IndependentReader) -> None:
    await reset_factory(reader)
    await reset_mousepad(reader)

    report = await Replayer(session).replay(
        recording("two-apps", check_box_step(), text_step("done in two apps"))
    )

    assert report.ok, report.text()
    assert "checked" in (await factory_boxes(reader, "check box"))[4].states
    assert await mousepad_text(reader) == "done in two apps"
    await reset_factory(reader)
    await reset_mousepad(reader)


# Robustness ------------------------------------------------------------------------------


async def test_a_row_is_found_after_the_window_moved_and_was_resized(
    desktop: VirtualDesktop, session: ScreenSession, reader: IndependentReader
) -> None:
    await reset_demo(desktop, reader)
    demo = desktop.wait_for_window(TEST_APPS[1])
    desktop.xdotool("windowsize", "--sync", demo, "700", "560")
    desktop.xdotool("windowmove", "--sync", demo, "900", "300")

    report = await Replayer(session).replay(recording("row", row_step("Builder")))

    assert report.ok, report.text()
    assert await selected_rows(reader) == ["Builder"]
    await reset_demo(desktop, reader)


async def test_a_row_is_selected_when_another_window_covers_it(
    desktop: VirtualDesktop, session: ScreenSession, reader: IndependentReader
) -> None:
    await reset_demo(desktop, reader)
    mousepad = desktop.wait_for_window(SAMPLE_APP)
    desktop.xdotool("windowmove", "--sync", mousepad, "1400", "40")
    desktop.xdotool("windowraise", mousepad)
    try:
        report = await Replayer(session).replay(recording("row", row_step("Clipboard")))
    finally:
        desktop.xdotool("windowmove", "--sync", mousepad, "0", "780")

    assert report.ok, report.text()
    assert await selected_rows(reader) == ["Clipboard"]
    await reset_demo(desktop, reader)


async def test_a_row_scrolled_out_of_view_is_scrolled_back_and_selected(
    desktop: VirtualDesktop, session: ScreenSession, reader: IndependentReader
) -> None:
    await reset_demo(desktop, reader)
    for _ in range(30):  # a person's wheel over the list, down to its end
        desktop.xdotool("mousemove", "1500", "300", "click", "5")
    for _ in range(50):
        nodes = await reader.nodes(DEMO)
        tree = next(n for n in nodes if n.role == "tree table")
        row = next(n for n in nodes if n.role == "table cell" and n.name == "Assistant")
        top = (await reader.extents(tree))[1]
        _, y, _, height = await reader.extents(row)
        if y + height <= top:
            break  # above the list's top edge: out of view
        await asyncio.sleep(0.1)
    assert y + height <= top, f"the list did not scroll: the row is at y {y}, the list at {top}"

    report = await Replayer(session).replay(recording("row", row_step("Assistant")))

    assert report.ok, report.text()
    assert await selected_rows(reader) == ["Assistant"]
    await reset_demo(desktop, reader)


async def test_text_lands_after_the_app_was_restarted(
    desktop: VirtualDesktop, session: ScreenSession, reader: IndependentReader
) -> None:
    await Replayer(session).replay(recording("warm", text_step("")))  # ids from the old app
    old_pid = desktop.pids[SAMPLE_APP.key]
    desktop.stop_app(SAMPLE_APP.key)
    desktop.launch(SAMPLE_APP)
    desktop.wait_for_window(SAMPLE_APP)
    await asyncio.to_thread(desktop.wait_for_trees, (SAMPLE_APP,))
    assert desktop.pids[SAMPLE_APP.key] != old_pid

    report = await Replayer(session).replay(recording("note", text_step("after a restart")))

    assert report.ok, report.text()
    assert await mousepad_text(reader) == "after a restart"
    await reset_mousepad(reader)


def renamed(step: Step, name: str) -> Step:
    """The step as if the button had been renamed: its only locator names `name`."""
    return replace(step, locators=(Locator("role_name", role=step.locators[0].role, name=name),))


async def test_a_renamed_element_fails_its_step_and_says_which(
    session: ScreenSession, reader: IndependentReader
) -> None:
    await reset_factory(reader)
    steps = (radio_step(), renamed(check_box_step(), "Bold"))

    report = await Replayer(session, step_timeout_s=0.5).replay(recording("renamed", *steps))

    assert not report.ok
    assert report.steps_done == 1
    failed = report.failed
    assert failed is not None and failed.number == 2
    assert "check 'Bold'" in failed.detail and "not in the window" in failed.detail
    assert "stopped at step 2 of 2" in report.summary()
    await reset_factory(reader)


class ScriptedHealer:
    """A test fake: counts the steps it is handed and never heals."""

    def __init__(self) -> None:
        self.requests: list[HealRequest] = []

    async def heal(self, request: HealRequest) -> Healed | None:
        self.requests.append(request)
        return None


async def test_a_destructive_step_that_fails_stops_without_healing(
    session: ScreenSession, reader: IndependentReader
) -> None:
    step = replace(renamed(check_box_step(), "Delete all"), risk="destructive")
    healer = ScriptedHealer()

    report = await Replayer(session, step_timeout_s=0.3, healer=healer).replay(
        recording("danger", step)
    )

    assert healer.requests == []
    assert report.failed is not None and "destructive" in report.failed.detail


async def test_dry_run_reports_the_failing_step_without_acting(
    session: ScreenSession, reader: IndependentReader, tmp_path: Path
) -> None:
    await reset_factory(reader)
    steps = (check_box_step(), renamed(radio_step(), "Renamed radio"))

    report = await Replayer(session).replay(recording("dry", *steps), dry_run=True)

    assert [o.status for o in report.outcomes] == ["found", "would_fail"]
    assert "step(s) 2 of 2 would fail" in report.summary()
    assert "checked" not in (await factory_boxes(reader, "check box"))[4].states
    assert not RecordingFiles(tmp_path).names()


class StopAfterFirstStep:
    """A step log that asks the replay to stop once step 1 is done (as Ctrl-C does)."""

    def __init__(self) -> None:
        self.replayer: Replayer | None = None
        self.done: list[int] = []

    def started(self, number: int, step: Step) -> None:
        pass

    def finished(self, number: int, step: Step, outcome: StepOutcome) -> None:
        self.done.append(number)
        assert self.replayer is not None
        self.replayer.request_stop()


async def test_a_stop_request_ends_the_replay_between_steps_and_says_how_far_it_got(
    session: ScreenSession, reader: IndependentReader
) -> None:
    await reset_factory(reader)
    log = StopAfterFirstStep()
    replayer = Replayer(session, log=log)
    log.replayer = replayer

    report = await replayer.replay(recording("boxes", check_box_step(), radio_step()))

    assert report.interrupted and not report.ok
    assert log.done == [1] and report.steps_done == 1
    assert "interrupted after 1 of 2 steps" in report.summary()
    assert "checked" not in (await factory_boxes(reader, "radio button"))[4].states
    await reset_factory(reader)


# Routines --------------------------------------------------------------------------------


def deskloop(*words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deskloop", *words], capture_output=True, text=True, timeout=120
    )


async def test_a_routine_whose_body_is_a_recording_runs_through_the_scheduler(
    reader: IndependentReader,
) -> None:
    await reset_factory(reader)
    files = RecordingFiles(paths().data_dir / "recordings")
    files.save(recording("boxes", check_box_step(), radio_step()))

    added = deskloop(
        "routines", "add", "tick-boxes", "--schedule", "every:3600", "--recording", "boxes"
    )
    assert added.returncode == 0, added.stderr
    # No scheduler is running: `routines run` runs it here, through the scheduler's runner.
    ran = deskloop("routines", "run", "tick-boxes")

    assert ran.returncode == 0, ran.stderr + ran.stdout
    with Store.open() as store:
        routine = store.routine("tick-boxes")
        assert routine is not None and routine.recording == "boxes"
        [run] = store.runs(routine.id)
        assert run.session_id is not None
        steps = store.tool_calls(run.session_id)
    assert run.status == "ok"
    assert "all 2 steps done" in run.output
    assert run.duration_s is not None and run.duration_s > 0
    assert [(call.name, call.status) for call in steps] == [("replay_step", "ok")] * 2
    assert "checked" in (await factory_boxes(reader, "check box"))[4].states
    await reset_factory(reader)


async def test_a_routine_run_records_the_failed_step(reader: IndependentReader) -> None:
    await reset_factory(reader)
    files = RecordingFiles(paths().data_dir / "recordings")
    lost = renamed(check_box_step(), "Bold")
    files.save(recording("lost", radio_step(), lost))
    with Store.open() as store:
        create_routine(store, "lost-box", prompt="", schedule="every:3600", recording="lost")

    ran = deskloop("routines", "run", "lost-box")

    assert ran.returncode == 1
    with Store.open() as store:
        routine = store.routine("lost-box")
        assert routine is not None
        [run] = store.runs(routine.id)
    assert run.status == "error"
    assert "stopped at step 2 of 2" in run.output and "check 'Bold'" in run.output
    assert (run.recording, run.steps_done, run.failed_step) == ("lost", 1, 2)
    await reset_factory(reader)


# The command line ------------------------------------------------------------------------


async def test_deskloop_replay_dry_run_says_which_step_would_fail(
    reader: IndependentReader,
) -> None:
    await reset_factory(reader)
    files = RecordingFiles(paths().data_dir / "recordings")
    files.save(recording("dry", check_box_step(), renamed(radio_step(), "Renamed radio")))

    dry = deskloop("replay", "dry", "--dry-run")

    assert dry.returncode == 1
    assert "1. click check box 'checkbutton'" in dry.stdout and "- found" in dry.stdout
    assert "2. click radio 'radiobutton'" in dry.stdout and "WOULD FAIL" in dry.stdout
    assert "step(s) 2 of 2 would fail" in dry.stdout
    assert "checked" not in (await factory_boxes(reader, "check box"))[4].states


async def test_deskloop_replay_does_the_steps_and_logs_them_as_a_session(
    reader: IndependentReader,
) -> None:
    await reset_factory(reader)
    RecordingFiles(paths().data_dir / "recordings").save(recording("boxes", check_box_step()))

    done = deskloop("replay", "boxes", "--no-heal", "--step-timeout", "3")

    assert done.returncode == 0, done.stderr
    assert "all 1 steps done" in done.stdout
    with Store.open() as store:
        [session] = store.sessions(1)
        calls = store.tool_calls(session.id)
    assert session.title == "replay boxes"
    assert [(c.name, c.status) for c in calls] == [("replay_step", "ok")]
    # A bare replay is a run, with the same record a routine's run has.
    with Store.open() as store:
        [run] = store.recording_runs("boxes")
    assert (run.status, run.routine_id, run.session_id) == ("ok", None, session.id)
    assert (run.steps_done, run.failed_step) == (1, None)
    assert run.duration_s is not None and "all 1 steps done" in run.output
    listed = deskloop("recordings", "runs", "boxes")
    assert listed.returncode == 0, listed.stderr
    assert f"#{run.id} ok in " in listed.stdout and "1 steps done" in listed.stdout
    await reset_factory(reader)


async def test_a_bare_replay_that_fails_records_the_failed_step(
    reader: IndependentReader,
) -> None:
    await reset_factory(reader)
    lost = renamed(check_box_step(), "Bold")
    RecordingFiles(paths().data_dir / "recordings").save(recording("lost", radio_step(), lost))

    failed = deskloop("replay", "lost", "--no-heal", "--step-timeout", "0.5")

    assert failed.returncode == 1
    listed = deskloop("recordings", "runs", "lost")
    assert "error" in listed.stdout and "1 steps done, failed at step 2" in listed.stdout
    with Store.open() as store:
        [run] = store.recording_runs("lost")
    assert (run.status, run.steps_done, run.failed_step) == ("error", 1, 2)
    assert "stopped at step 2 of 2" in run.output
    await reset_factory(reader)


def test_deskloop_replay_of_an_unknown_recording_says_how_to_make_one() -> None:
    missing = deskloop("replay", "nothing-here")
    assert missing.returncode == 1
    assert "no recording named 'nothing-here'" in missing.stderr
    assert "deskloop record nothing-here" in missing.stderr
    assert "Traceback" not in missing.stderr
