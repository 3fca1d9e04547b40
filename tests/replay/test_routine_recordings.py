"""Routines whose body is a recording: made from the command line, kept in the store, and
healed only within the routine's approved tools."""

from __future__ import annotations

import json
import subprocess
import sys

from deskloop.agent.heal_step import HEALING_TOOLS
from deskloop.recordings.recording import Recording, RecordingFiles, Step
from deskloop.routines import create_routine, get_routine, update_routine
from deskloop.routines.routines import RoutineChanges
from deskloop.scheduler.replay_run import routine_healer
from deskloop.settings import paths
from deskloop.store import Store


def deskloop(*words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deskloop", *words], capture_output=True, text=True, timeout=60
    )


def save_recording(name: str) -> None:
    step = Step("keys", "press Ctrl+S", app="mousepad", text="ctrl+s")
    RecordingFiles(paths().data_dir / "recordings").save(Recording(name, (step,)))


def test_routines_add_with_a_recording_keeps_it_and_lists_it() -> None:
    save_recording("save-note")

    added = deskloop(
        "routines", "add", "nightly", "--schedule", "every:3600", "--recording", "save-note"
    )
    listed = deskloop("routines", "list", "--json")

    assert added.returncode == 0, added.stderr
    assert "replays the recording 'save-note'" in added.stdout
    [routine] = json.loads(listed.stdout)
    assert routine["recording"] == "save-note"
    assert routine["prompt"] == "replay the recording save-note"


def test_routines_add_refuses_a_recording_that_does_not_exist() -> None:
    added = deskloop(
        "routines", "add", "nightly", "--schedule", "every:3600", "--recording", "nope"
    )
    assert added.returncode == 1
    assert "no recording named 'nope'" in added.stderr and "Traceback" not in added.stderr


def test_routines_add_needs_a_prompt_or_a_recording() -> None:
    added = deskloop("routines", "add", "nightly", "--schedule", "every:3600")
    assert added.returncode == 1
    assert "--prompt TEXT" in added.stderr and "--recording NAME" in added.stderr


def test_a_recording_routine_can_become_a_model_routine_again() -> None:
    with Store.open() as store:
        create_routine(store, "r", prompt="", schedule="every:60", recording="demo")
        update_routine(store, "r", RoutineChanges(recording="", prompt="Tidy the desktop"))
        routine = get_routine(store, "r")
    assert routine.recording == "" and routine.prompt == "Tidy the desktop"


def test_healing_follows_the_routines_approved_tools() -> None:
    with Store.open() as store:
        read_only = create_routine(store, "a", prompt="", schedule="every:60", recording="x")
        clicks = create_routine(
            store, "b", prompt="", schedule="every:60", recording="x", tools=("click", "sql")
        )
    # No list (read-class tools only): nothing may act, so a lost step is not healed.
    assert routine_healer(read_only) is None
    healer = routine_healer(clicks)
    assert healer is not None and healer.tools() == {"click"} <= HEALING_TOOLS
