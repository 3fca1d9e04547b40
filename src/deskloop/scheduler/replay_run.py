"""A routine whose body is a recording: its run replays the recording, no model session.

The run keeps the same record as a model run (status, output, duration, its session): the
output says how many steps were done and which failed and why, and each step is a
`replay_step` call of the run's session. Healing runs only within the routine's approved
tools, as every unattended run does; with none that act, a lost step stops the run.
"""

from __future__ import annotations

import asyncio

from deskloop.agent.heal_step import HEALING_TOOLS, ModelHealer
from deskloop.recordings.commands import recording_files
from deskloop.recordings.recording import RecordingError
from deskloop.recordings.replay import Replayer
from deskloop.recordings.replay_report import ReplayReport
from deskloop.recordings.replay_runs import record_steps, run_result
from deskloop.recordings.step_log import SessionStepLog
from deskloop.screen.actions import ScreenSession
from deskloop.screen.errors import ScreenError
from deskloop.screen.platforms import default_backend
from deskloop.store import RoutineRecord, RunRecord, RunResult, Store

READ_TOOLS = frozenset({"observe", "find_elements"})


def routine_healer(routine: RoutineRecord) -> ModelHealer | None:
    """A healer limited to the routine's approved tools; None when they cannot act."""
    approved = frozenset(routine.tools or ())
    if not (approved & HEALING_TOOLS) - READ_TOOLS:
        return None
    return ModelHealer(
        endpoint=routine.endpoint or None, model=routine.model or None, allowed_tools=approved
    )


async def replay_routine(store: Store, routine: RoutineRecord, run: RunRecord) -> RunResult:
    """Replay `routine.recording` for `run`; the run's session logs each step."""
    files = recording_files()
    try:
        recording = files.load(routine.recording)
    except RecordingError as error:
        return RunResult("error", str(error))
    log = SessionStepLog.new_session(
        store, recording.name, f"routine {routine.name}: replay {recording.name}"
    )
    store.set_run_session(run.id, log.session_id)
    try:
        backend = await default_backend()
    except ScreenError as error:
        log.end(False, str(error))
        return RunResult("error", f"no screen to replay on: {error}")
    replayer = Replayer(
        ScreenSession(backend), files=files, healer=routine_healer(routine), log=log
    )
    try:
        async with asyncio.timeout(routine.timeout_s):
            report = await replayer.replay(recording)
        result = run_result(report)
        record_steps(store, run.id, report)
    except TimeoutError:
        reached = replayer.report or ReplayReport(recording.name, len(recording.steps), ())
        record_steps(store, run.id, reached)
        result = RunResult(
            "timeout",
            f"stopped after {routine.timeout_s:g} s, the run's timeout\n{run_result(reached).output}",
        )
    except asyncio.CancelledError:
        words = f" after {replayer.report.steps_done} steps" if replayer.report else ""
        log.end(False, f"interrupted{words}")
        raise
    except ScreenError as error:
        result = RunResult("error", str(error))
    finally:
        await backend.close()
    log.end(result.status == "ok", result.output.splitlines()[0] if result.output else "")
    return result
