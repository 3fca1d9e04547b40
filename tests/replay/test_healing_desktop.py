"""Healing a lost step with a model: the scripted engine (a test fake, asked for by name)
plays the model; its repair is proposed beside the recording and applied only on accept."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from deskloop.agent.heal_step import ModelHealer
from deskloop.recordings.recording import Locator, Recording, RecordingFiles
from deskloop.recordings.replay import Replayer
from deskloop.screen.actions import ScreenSession
from deskloop.screen.backend import Target
from deskloop.settings import paths
from tests.agent.scripted_server import scripted_server, tool_call
from tests.replay.atspi_reader import IndependentReader
from tests.replay.test_replay_desktop import FACTORY, check_box_step, factory_boxes, reset_factory

pytestmark = [pytest.mark.desktop, pytest.mark.slow]


async def fresh_id_of_fifth_check_box() -> str:
    """The id a new agent session gives the fifth check box (ids follow tree order)."""
    from deskloop.screen.backends.atspi.backend import AtspiBackend

    backend = await AtspiBackend.connect()
    try:
        snapshot = await ScreenSession(backend).read(Target(app=FACTORY))
    finally:
        await backend.close()
    boxes = [e for e in snapshot if e.role == "check" and e.box is not None]
    return boxes[4].id


async def test_a_renamed_check_box_is_healed_by_the_scripted_model_and_proposed_only(
    session: ScreenSession,
    reader: IndependentReader,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DESKLOOP_AGENT_MODEL", "claude-deskloop-test")
    await reset_factory(reader)
    files = RecordingFiles(paths().data_dir / "recordings")
    renamed = replace(check_box_step(), locators=(Locator("role_name", role="check", name="Bold"),))
    lost = Recording("tick", (renamed,))
    files.save(lost)
    element_id = await fresh_id_of_fifth_check_box()
    outputs = [tool_call("click", {"id": element_id}), "Clicked the check box."]

    with scripted_server(tmp_path, outputs) as url:
        report = await Replayer(
            session, files=files, step_timeout_s=0.5, healer=ModelHealer(endpoint=url)
        ).replay(files.load("tick"))

    assert report.ok, report.text()
    assert report.outcomes[0].status == "healed"
    assert "checked" in (await factory_boxes(reader, "check box"))[4].states
    # Proposed beside the recording, not applied.
    assert files.load("tick").steps[0].locators == lost.steps[0].locators
    proposal = files.load_proposal("tick")
    assert proposal is not None
    assert any(loc.kind == "index" and loc.index == 4 for loc in proposal.steps[0].locators)

    accepted = subprocess.run(
        [sys.executable, "-m", "deskloop", "recordings", "accept", "tick"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert accepted.returncode == 0, accepted.stderr
    assert files.load("tick").steps[0].locators == proposal.steps[0].locators
    assert files.load_proposal("tick") is None
    await reset_factory(reader)
