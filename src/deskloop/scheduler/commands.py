"""The handlers of `deskloop routines ...` and `deskloop scheduler [install|uninstall]`."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from deskloop.routines.lock_file import holder_pid, lock_path
from deskloop.routines.routines import (
    RoutineChanges,
    RoutineError,
    busy_error,
    create_routine,
    get_routine,
    list_routines,
    recover_stale_runs,
    remove_routine,
    request_run,
    routine_runs,
    routine_to_json,
    run_to_json,
    tools_words,
    update_routine,
)
from deskloop.scheduler.install import install, uninstall
from deskloop.scheduler.lock import SchedulerLock
from deskloop.scheduler.runner import ModelServers, Scheduler
from deskloop.settings import AgentSettings, SchedulerSettings, load_settings, paths
from deskloop.store import RoutineRecord, RunRecord, SessionMode, Store
from deskloop.tools.tool_names import tool_list_check


def _tools(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip())


def routines_command(args: argparse.Namespace) -> int:
    action = args.routines_action
    with Store.open() as store:
        if action == "add":
            if not args.prompt and not args.recording:
                raise RoutineError(
                    "give --prompt TEXT (what the agent does) or --recording NAME (a "
                    "recording to replay)"
                )
            routine = create_routine(
                store,
                args.name,
                prompt=args.prompt or "",
                recording=_recording(args.recording),
                schedule=args.schedule,
                tools=_tools(args.tools),
                timezone=args.tz,
                endpoint=args.endpoint or "",
                model=args.model or "",
                timeout_s=args.timeout or load_settings().scheduler.routine_timeout_s,
                session_mode="resume" if args.resume else "new",
                enabled=not args.disabled,
                check_tools=tool_list_check(store),
            )
            print(f"added {routine.name}: {_describe(routine)}")
            _warn_without_scheduler()
        elif action == "update":
            routine = update_routine(
                store, args.name, _changes(args), check_tools=tool_list_check(store)
            )
            print(f"updated {routine.name}: {_describe(routine)}")
        elif action == "list":
            _print_list(store, as_json=args.json)
        elif action == "remove":
            remove_routine(store, args.name)
            print(f"removed {args.name}")
        elif action == "runs":
            _print_runs(routine_runs(store, args.name, args.limit), as_json=args.json)
        else:
            return _run_now(store, args.name)
    return 0


def _changes(args: argparse.Namespace) -> RoutineChanges:
    if args.enabled and args.disabled:
        raise RoutineError("give --enabled or --disabled, not both")
    if args.resume and args.new_session:
        raise RoutineError("give --resume or --new-session, not both")
    enabled = True if args.enabled else (False if args.disabled else None)
    mode: SessionMode | None = "resume" if args.resume else ("new" if args.new_session else None)
    return RoutineChanges(
        prompt=args.prompt,
        schedule=args.schedule,
        tools=_tools(args.tools),
        read_only_tools=args.read_tools_only,
        timezone=args.tz,
        endpoint=args.endpoint,
        model=args.model,
        timeout_s=args.timeout,
        session_mode=mode,
        enabled=enabled,
        new_name=args.rename,
        recording=None if args.recording is None else _recording(args.recording),
    )


def _recording(name: str | None) -> str:
    """A recording that exists (checked when the routine is made, not only when it fires)."""
    if not name:
        return ""
    from deskloop.recordings.commands import recording_files

    recording_files().load(name)
    return name


def _local(epoch: float | None, zone: str) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def _describe(routine: RoutineRecord) -> str:
    state = "" if routine.enabled else ", disabled"
    mode = ", resumes its session" if routine.session_mode == "resume" else ""
    if routine.recording:
        mode += f", replays the recording {routine.recording!r}"
    return (
        f"{routine.schedule} ({routine.timezone}), next {_local(routine.next_fire_at, routine.timezone)}"
        f"; tools: {tools_words(routine.tools)}{mode}{state}"
    )


def _print_list(store: Store, *, as_json: bool) -> None:
    routines = list_routines(store)
    if as_json:
        print(json.dumps([routine_to_json(r) for r in routines], indent=2))
        return
    if not routines:
        print(
            'no routines yet; add one with `deskloop routines add NAME --schedule every:3600 --prompt "..."`'
        )
        return
    for routine in routines:
        last = store.runs(routine.id, 1)
        said = f"last run {last[0].status}" if last else "never run"
        print(f"{routine.name}: {_describe(routine)}; {said}")


def _print_runs(runs: list[RunRecord], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([run_to_json(run) for run in runs], indent=2))
        return
    if not runs:
        print("no runs yet")
    for run in runs:
        data = run_to_json(run)
        took = "" if data["duration_s"] is None else f" in {data['duration_s']:.1f} s"
        extra = " (catch-up)" if run.catch_up else ""
        session = f" session {run.session_id}" if run.session_id is not None else ""
        tokens = f", {run.input_tokens}+{run.output_tokens} tokens"
        print(f"#{run.id} {data['started_at']} {run.status}{took}{extra}{session}{tokens}")
        if run.refused_tools:
            print(f"    refused: {', '.join(run.refused_tools)}")
        for line in run.output.splitlines()[:6]:
            print(f"    {line}")


def _warn_without_scheduler() -> None:
    if holder_pid(lock_path(paths().data_dir)) is None:
        print(
            "no scheduler is running: start one with `deskloop scheduler` "
            "(or `deskloop scheduler install` to run it as a service)",
            file=sys.stderr,
        )


def _run_now(store: Store, name: str) -> int:
    routine = get_routine(store, name)
    recover_stale_runs(store)
    if store.live_run(routine.id) is not None:
        raise busy_error(routine)
    holder = holder_pid(lock_path(paths().data_dir))
    if holder is not None:
        request_run(store, name)
        print(f"asked the scheduler (pid {holder}) to run {name} now; "
              f"see `deskloop routines runs {name}`")  # fmt: skip
        return 0
    run = asyncio.run(_run_here(store, routine))
    _print_runs([run], as_json=False)
    return 0 if run.status == "ok" else 1


async def _run_here(store: Store, routine: RoutineRecord) -> RunRecord:
    servers = ModelServers(load_settings().agent)
    try:
        scheduler = Scheduler(store, servers, on_event=lambda line: print(line, file=sys.stderr))
        return await scheduler.run_once(routine)
    finally:
        servers.close()


def scheduler_command(args: argparse.Namespace) -> int:
    if args.action == "install":
        installed = install(start=not args.no_start)
        print(f"wrote {installed.path}")
        for line in installed.said:
            print(line)
        return 0
    if args.action == "uninstall":
        removed = uninstall()
        print(f"removed {removed}" if removed else "no scheduler service was installed")
        return 0
    settings = load_settings()
    with SchedulerLock(lock_path(paths().data_dir)), Store.open() as store:
        return asyncio.run(_serve(store, settings.agent, settings.scheduler))


async def _serve(store: Store, agent: AgentSettings, options: SchedulerSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    servers = ModelServers(agent)

    def say(line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)

    scheduler = Scheduler(
        store,
        servers,
        poll_s=options.poll_s,
        observer_every=options.observer_every,
        standby=options.standby_child,
        on_event=say,
    )
    count = len(list_routines(store))
    print(f"deskloop scheduler running: {count} routines; Ctrl-C stops it", flush=True)
    try:
        await scheduler.serve(stop)
    finally:
        servers.close()
    say("stopped")
    return 0
