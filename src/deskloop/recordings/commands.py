"""`deskloop record` and `deskloop recordings`: thin wrappers the CLI routes to."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from deskloop.command_line import print_table
from deskloop.recordings.recorder import Recorder, RecorderLock, stop_running_recorder
from deskloop.recordings.recording import (
    Recording,
    RecordingError,
    RecordingFiles,
    Step,
    check_name,
    steps_summary,
)
from deskloop.recordings.replay_runs import run_line
from deskloop.settings import paths
from deskloop.store import Store


def recording_files() -> RecordingFiles:
    return RecordingFiles(paths().data_dir / "recordings")


def _print_step(number: int, step: Step) -> None:
    print(f"{number}. {step.intent}", flush=True)


async def _apps_running() -> frozenset[str]:
    from deskloop.screen.errors import ScreenError
    from deskloop.screen.platforms import default_backend

    try:
        backend = await default_backend()
    except ScreenError:
        return frozenset()
    try:
        return frozenset(app.name for app in await backend.list_apps())
    except ScreenError:
        return frozenset()
    finally:
        await backend.close()


async def _record(name: str, app: str | None, files: RecordingFiles) -> Recording:
    from deskloop.screen.event_sources import open_event_source

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    apps = await _apps_running()
    source = await open_event_source(app)
    where = f" in {app}" if app else ""
    print(
        f"recording {name!r}{where}: show the task now. Stop with Ctrl-C or "
        "`deskloop record --stop`.",
        file=sys.stderr,
        flush=True,
    )
    recorder = Recorder(source, name, files, only_app=app, apps_at_start=apps, on_step=_print_step)
    return await recorder.run(stop)


def record_command(args: argparse.Namespace) -> int:
    files = recording_files()
    if args.stop:
        pid, name = stop_running_recorder(files.folder)
        print(f"asked the recording {name!r} (pid {pid}) to stop; it saves its steps")
        return 0
    if not args.name:
        raise RecordingError("say what to call the recording: `deskloop record NAME`")
    name = check_name(args.name)
    if files.exists(name) and not args.replace:
        raise RecordingError(
            f"a recording named {name!r} already exists: pick another name, or pass "
            "--replace to record it again"
        )
    lock = RecorderLock(files.folder)
    lock.take(name)
    try:
        recording = asyncio.run(_record(name, args.app, files))
    finally:
        lock.release()
    count = len(recording.steps)
    if count == 0:
        print(f"saved {name!r} with no steps: nothing was recognised", file=sys.stderr)
    else:
        print(f"saved {count} step{'s' * (count != 1)} to {files.path(name)}", file=sys.stderr)
    return 0


def recordings_command(args: argparse.Namespace) -> int:
    files = recording_files()
    action = args.recordings_action
    if action == "list":
        return _list(files, args.json)
    if action == "show":
        return _show(files, args.name, args.json)
    if action == "remove":
        files.remove(args.name)
        print(f"removed {args.name!r}")
        return 0
    if action == "rename":
        files.rename(args.name, args.new_name)
        print(f"renamed {args.name!r} to {args.new_name!r}")
        return 0
    if action == "accept":
        accepted = files.accept(args.name)
        print(f"accepted the proposed repair of {args.name!r} ({len(accepted.steps)} steps)")
        return 0
    if action == "runs":
        return _runs(args.name, args.limit)
    raise RecordingError(f"no recordings action {action!r}")


def _runs(name: str, limit: int) -> int:
    """Every replay of `name` (its own and its routines'), each a run record."""
    if limit < 1:
        raise RecordingError(f"--limit must be 1 or more, not {limit}")
    with Store.open() as store:
        runs = store.recording_runs(name, limit)
    if not runs:
        print(f"no replays of {name!r} yet: `deskloop replay {name}` does one")
    for run in runs:
        print(run_line(run))
        for line in run.output.splitlines()[:1]:
            print(f"    {line}")
    return 0


def _list(files: RecordingFiles, as_json: bool) -> int:
    rows: list[dict[str, object]] = []
    for name in files.names():
        try:
            recording = files.load(name)
        except RecordingError as exc:
            rows.append({"name": name, "error": str(exc)})
            continue
        rows.append(
            {
                "name": name,
                "steps": len(recording.steps),
                "apps": list(recording.apps),
                "created": recording.created,
                "proposed_repair": files.load_proposal(name) is not None,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("no recordings yet: make one with `deskloop record NAME`")
        return 0
    table = [["NAME", "STEPS", "APPS", "CREATED"]]
    for row in rows:
        if "error" in row:
            table.append([str(row["name"]), "-", "(unreadable)", str(row["error"])])
            continue
        repair = " (repair proposed)" if row["proposed_repair"] else ""
        apps = ", ".join(str(app) for app in row["apps"]) or "-"  # type: ignore[attr-defined]
        table.append([str(row["name"]), str(row["steps"]), apps, f"{row['created']}{repair}"])
    print_table(table, numbers=(1,))
    return 0


def _details(step: Step) -> list[str]:
    lines = []
    if step.secret:
        lines.append(
            f"secret: {step.secret} (asked for at replay, or DESKLOOP_SECRET_{step.secret.upper()})"
        )
    if step.postcondition is not None:
        lines.append(f"then: {step.postcondition.describe()}")
    if step.destructive:
        lines.append("destructive: replay stops here rather than guess")
    return lines


def _show(files: RecordingFiles, name: str, as_json: bool) -> int:
    recording = files.load(name)
    proposal = files.load_proposal(name)
    if as_json:
        data = recording.to_json()
        if proposal is not None:
            data["proposed_repair"] = proposal.to_json()
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    apps = ", ".join(recording.apps) or "no app"
    print(f"{recording.name}: {len(recording.steps)} steps in {apps}, recorded {recording.created}")
    for line, step in zip(steps_summary(recording.steps), recording.steps, strict=True):
        print(f"  {line}")
        for detail in _details(step):
            print(f"       {detail}")
    if proposal is not None:
        print(f"\nproposed repair (apply with `deskloop recordings accept {name}`):")
        for number, change in _changes(recording, proposal):
            print(f"  step {number}: {change}")
    return 0


def _changes(recording: Recording, proposal: Recording) -> list[tuple[int, str]]:
    """What the proposal changes, step by step, in words."""
    changes: list[tuple[int, str]] = []
    count = max(len(recording.steps), len(proposal.steps))
    for index in range(count):
        old = recording.steps[index] if index < len(recording.steps) else None
        new = proposal.steps[index] if index < len(proposal.steps) else None
        if old == new:
            continue
        if old is None and new is not None:
            changes.append((index + 1, f"added: {new.intent}"))
        elif new is None and old is not None:
            changes.append((index + 1, f"removed: {old.intent}"))
        elif old is not None and new is not None:
            found = ", ".join(_locator_words(new)) or "no locators"
            changes.append((index + 1, f"{new.intent} (find it by {found})"))
    return changes or [(0, "no differences from the recording")]


def _locator_words(step: Step) -> list[str]:
    words = []
    for locator in step.locators:
        if locator.kind == "role_name":
            words.append(f"{locator.role} {locator.name!r}")
        elif locator.kind == "stable_id":
            words.append(f"id {locator.stable_id!r}")
        elif locator.kind == "path":
            words.append(" > ".join(part.name for part in locator.path) + f" > {locator.name!r}")
        else:
            words.append(locator.kind)
    return words
