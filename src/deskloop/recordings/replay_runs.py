"""Every replay is a run: the same run record a routine's run has (status, output,
duration, its session), with the recording, how many steps were done and the failed step.

A routine's replay fills these in on its own run; a bare replay (`deskloop replay NAME`,
the `replay_recording` tool) starts a run of its own, with no routine.
"""

from __future__ import annotations

import os

from deskloop.recordings.replay_report import ReplayReport
from deskloop.store import RunRecord, RunResult, RunStatus, Store

OUTPUT_LIMIT_CHARS = 8000  # as a routine's model run keeps (routines/outcome.py)


def run_result(report: ReplayReport) -> RunResult:
    """The run's status and output: the summary, then one line per step."""
    status: RunStatus = "ok" if report.ok else "error"
    output = f"{report.summary()}\n" + "\n".join(o.line() for o in report.outcomes)
    return RunResult(status, output[:OUTPUT_LIMIT_CHARS])


def record_steps(store: Store, run_id: int, report: ReplayReport) -> None:
    failed = report.failed
    store.set_run_steps(
        run_id, report.recording, report.steps_done, None if failed is None else failed.number
    )


def start_replay_run(store: Store, recording: str, session_id: int | None) -> RunRecord:
    run = store.start_replay_run(recording, owner_pid=os.getpid())
    if session_id is not None:
        store.set_run_session(run.id, session_id)
    return run


def finish_replay_run(
    store: Store, run_id: int, report: ReplayReport, result: RunResult | None = None
) -> RunRecord:
    """The run ended as `report` says (or as `result` says, where the caller knows more)."""
    record_steps(store, run_id, report)
    return store.finish_run(run_id, result or run_result(report))


def run_line(run: RunRecord) -> str:
    """One run as `recordings runs` prints it."""
    took = "" if run.duration_s is None else f" in {run.duration_s:.1f} s"
    steps = "" if run.steps_done is None else f", {run.steps_done} steps done"
    failed = "" if run.failed_step is None else f", failed at step {run.failed_step}"
    by = "" if run.routine_id is None else f" (routine #{run.routine_id})"
    return f"#{run.id} {run.status}{took}{steps}{failed}{by}"
