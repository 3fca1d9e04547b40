"""`deskloop replay NAME`: a recording done again on this screen, its steps logged as a
session's, healed by the model where a step is lost (a repair is only proposed)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import signal
import sys
from dataclasses import asdict

from deskloop.agent.heal_step import ModelHealer
from deskloop.recordings.commands import recording_files
from deskloop.recordings.recording import Recording
from deskloop.recordings.replay import Replayer, secret_from_environment
from deskloop.recordings.replay_report import ReplayReport
from deskloop.recordings.replay_runs import finish_replay_run, start_replay_run
from deskloop.recordings.step_log import SessionStepLog
from deskloop.screen.actions import ScreenSession
from deskloop.screen.platforms import default_backend
from deskloop.store import RunResult, Store


def ask_secret(name: str) -> str | None:
    """The secret from DESKLOOP_SECRET_<NAME>, else asked for at a terminal (never echoed)."""
    found = secret_from_environment(name)
    if found is not None or not sys.stdin.isatty():
        return found
    return getpass.getpass(f"secret {name!r} for this replay: ")


def report_json(report: ReplayReport) -> dict[str, object]:
    failed = report.failed
    return {
        "recording": report.recording,
        "ok": report.ok,
        "dry_run": report.dry_run,
        "steps": report.total,
        "steps_done": report.steps_done,
        "failed_step": None if failed is None else failed.number,
        "interrupted": report.interrupted,
        "proposal": None if report.proposal is None else str(report.proposal),
        "duration_s": round(report.duration_s, 3),
        "outcomes": [asdict(outcome) for outcome in report.outcomes],
        "summary": report.summary(),
    }


async def _replay(
    args: argparse.Namespace,
    recording: Recording,
    log: SessionStepLog | None,
    started: list[Replayer],
) -> ReplayReport:
    files = recording_files()
    backend = await default_backend()
    replayer = Replayer(
        ScreenSession(backend),
        files=files,
        step_timeout_s=args.step_timeout,
        healer=None if args.no_heal or args.dry_run else ModelHealer(endpoint=args.endpoint),
        secrets=ask_secret,
        log=log,
    )
    started.append(replayer)
    # Ctrl-C stops between steps, so the report (and the session) says how far it got.
    with contextlib.suppress(NotImplementedError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, replayer.request_stop)
    try:
        return await replayer.replay(recording, dry_run=args.dry_run)
    finally:
        await backend.close()


def replay_command(args: argparse.Namespace) -> int:
    started: list[Replayer] = []
    recording = recording_files().load(args.name)  # an unknown name: said before anything
    with Store.open() as store:
        log = None if args.dry_run else SessionStepLog.new_session(store, args.name)
        # A bare replay is a run too, beside its routines' runs (`recordings runs NAME`).
        run = None if log is None else start_replay_run(store, args.name, log.session_id)
        try:
            report = asyncio.run(_replay(args, recording, log, started))
        except KeyboardInterrupt:
            # Ctrl-C stops between steps: the report says how far it got.
            so_far = started[0].report if started else None
            report = ReplayReport(
                args.name,
                so_far.total if so_far else 0,
                so_far.outcomes if so_far else (),
                interrupted=True,
            )
        except BaseException:
            if log is not None:
                log.end(False, "the replay could not start")
            if run is not None:
                store.finish_run(run.id, RunResult("error", "the replay could not start"))
            raise
        if log is not None:
            log.end(report.ok, report.summary())
        if run is not None:
            finish_replay_run(store, run.id, report)
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        print(report.text())
    if report.interrupted:
        return 130
    return 0 if report.ok or (args.dry_run and report.failed is None) else 1
