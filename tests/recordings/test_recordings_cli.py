"""`deskloop recordings list|show|remove|rename|accept` and `deskloop record`'s refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from deskloop.cli import main
from deskloop.recordings.recorder import RecorderLock
from deskloop.recordings.recording import Locator, Postcondition, Recording, RecordingFiles, Step
from deskloop.settings import paths

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
