"""`deskloop recordings list|show|remove|rename|accept` and `deskloop record`'s refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deskloop.cli import main
from deskloop.recordings.recorder import RecorderLock
from deskloop.recordings.recording import Locator, Postcondition, Recording, RecordingFiles, Step
from deskloop.recordings.replay_report import ReplayReport, StepOutcome
from deskloop.recordings.replay_runs import finish_replay_run, start_replay_run
from deskloop.settings import paths
from deskloop.store import Store

STEPS = (
    Step(
        action="click",
        intent="click check box 'Bold' in window 'Editor'",
        app="editor",
        locators=(Locator("role_name", role="check", name="Bold"),),
        postcondition=Postcondition("checked"),
    ),
    Step(
        action="set_text",
        intent="type the secret 'password' into password field 'Password'",
        app="editor",
        locators=(Locator("role_name", role="password", name="Password"),),
        secret="password",
    ),
)


def files() -> RecordingFiles:
    return RecordingFiles(paths().data_dir / "recordings")


def test_list_show_rename_remove(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recordings", "list"]) == 0
    assert "no recordings yet" in capsys.readouterr().out
    files().save(Recording("bold", STEPS, apps=("editor",)))
    assert main(["recordings", "list"]) == 0
    listing = capsys.readouterr().out
    assert "bold" in listing and "editor" in listing
    assert main(["recordings", "show", "bold"]) == 0
    shown = capsys.readouterr().out
    assert "1. click check box 'Bold' in window 'Editor'" in shown
    assert "then: is checked" in shown
    assert "DESKLOOP_SECRET_PASSWORD" in shown
    assert main(["recordings", "rename", "bold", "bolder"]) == 0
    assert files().names() == ["bolder"]
    assert main(["recordings", "remove", "bolder"]) == 0
    assert files().names() == []


def test_show_prints_a_proposed_repair_and_accept_applies_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    files().save(Recording("bold", STEPS))
    repaired = Step(
        action="click",
        intent="click check box 'Strong' in window 'Editor'",
        locators=(Locator("role_name", role="check", name="Strong"),),
    )
    files().save_proposal(Recording("bold", (repaired, STEPS[1])))
    assert main(["recordings", "show", "bold"]) == 0
    shown = capsys.readouterr().out
    assert "proposed repair (apply with `deskloop recordings accept bold`)" in shown
    assert "step 1: click check box 'Strong'" in shown
    assert main(["recordings", "accept", "bold"]) == 0
    assert files().load("bold").steps[0].intent.startswith("click check box 'Strong'")


def test_a_second_recorder_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    lock = RecorderLock(files().folder)
    lock.take("first")
    try:
        assert main(["record", "second"]) == 1
        said = capsys.readouterr().err
        assert "a recording is already running ('first'" in said
        assert "deskloop record --stop" in said
    finally:
        lock.release()


def test_stop_with_nothing_running_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["record", "--stop"]) == 1
    assert "no recording is running" in capsys.readouterr().err


def test_a_bad_name_or_an_existing_one_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["record", "../etc"]) == 1
    assert "cannot name a recording" in capsys.readouterr().err
    files().save(Recording("taken", STEPS))
    assert main(["record", "taken"]) == 1
    assert "--replace" in capsys.readouterr().err


def test_unknown_recording(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["recordings", "show", "nope"]) == 1
    assert "no recording named 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        ({"action": "clik"}, "step 2 is not valid: step action 'clik' is not one of"),
        ({"locators": [{"kind": "role_name", "index": "third"}]}, "step 2 is not valid: a field"),
        ({"locators": []}, "step 2 (click) is not valid: it has no locators"),
        ({"postcondition": {"kind": "green"}}, "step 2 is not valid: postcondition kind 'green'"),
    ],
)
def test_a_recording_edited_into_something_invalid_names_the_step(
    capsys: pytest.CaptureFixture[str], edit: dict[str, object], why: str
) -> None:
    path = files().save(Recording("edited", (STEPS[0], STEPS[0]), apps=("editor",)))
    data = json.loads(path.read_text())
    data["steps"][1].update(edit)  # a person's hand edit of the second step
    path.write_text(json.dumps(data))

    for command in (["recordings", "show", "edited"], ["replay", "edited", "--dry-run"]):
        assert main(command) == 1
        error = capsys.readouterr().err
        assert why in error, error
        assert "edited.json" in error and "Traceback" not in error


def test_runs_lists_each_replay_with_its_steps(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recordings", "runs", "bold"]) == 0
    assert "no replays of 'bold' yet" in capsys.readouterr().out
    done = StepOutcome(1, STEPS[0].intent, "done", "it is checked", "accessibility", 0.1)
    lost = StepOutcome(2, STEPS[1].intent, "failed", "needs the secret 'password'")
    with Store.open() as store:
        run = start_replay_run(store, "bold", None)
        finish_replay_run(store, run.id, ReplayReport("bold", 2, (done, lost), duration_s=0.2))

    assert main(["recordings", "runs", "bold"]) == 0
    listed = capsys.readouterr().out
    assert f"#{run.id} error in " in listed
    assert "1 steps done, failed at step 2" in listed
    assert "stopped at step 2 of 2" in listed
