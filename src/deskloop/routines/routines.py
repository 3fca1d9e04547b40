"""Routines as a person or the model manages them: create, update, remove, list, runs, run now.

The CLI, the `routines_*` tools and the web UI all call these; each checks its input and
raises `RoutineError` with a message that says what to write instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from deskloop.errors import DeskloopError
from deskloop.routines.lock_file import holder_pid, lock_path
from deskloop.routines.schedule import Schedule, ScheduleError, parse_schedule
from deskloop.settings import paths
from deskloop.store import (
    RoutineBusy,
    RoutineFields,
    RoutineRecord,
    RunRecord,
    RunResult,
    SessionMode,
    Store,
)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TOOL_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
DEFAULT_TIMEOUT_S = 900.0
T = TypeVar("T")
READ_ONLY_WORDS = "read-class tools only"
SCHEDULER_STOPPED = (
    "the scheduler stopped during this run (killed, crashed or shut down), and the "
    "run's session ended with it"
)


class RoutineError(DeskloopError):
    """A routine that does not exist, a name taken, or a field that cannot be used."""


class RoutineRunning(RoutineError):
    """A run of this routine is live, so another cannot start."""


@dataclass(frozen=True)
class RoutineChanges:
    """What to set on a routine; None leaves a field as it is (for update)."""

    prompt: str | None = None
    schedule: str | None = None
    tools: tuple[str, ...] | None = None
    # True: the routine goes back to read-class tools only (its list is dropped).
    read_only_tools: bool = False
    timezone: str | None = None
    endpoint: str | None = None
    model: str | None = None
    timeout_s: float | None = None
    session_mode: SessionMode | None = None
    enabled: bool | None = None
    new_name: str | None = None
    # The recording its runs replay ("" makes it a model routine again).
    recording: str | None = None


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _epoch(when: datetime | None) -> float | None:
    return None if when is None else when.timestamp()


def tools_words(tools: tuple[str, ...] | None) -> str:
    """A routine's tool list as a person reads it (approval text, `routines list`)."""
    if tools is None:
        return READ_ONLY_WORDS
    return ", ".join(tools) if tools else "no tools"


def routine_schedule(routine: RoutineRecord) -> Schedule:
    """The stored schedule, parsed in the routine's zone (a past `at:` is fine here)."""
    return parse_schedule(routine.schedule, routine.timezone)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_stale_runs(store: Store) -> list[RunRecord]:
    """Runs left `running` by a process that is gone become errors; their sessions end."""
    recovered = []
    for run in store.live_runs():
        if run.owner_pid is not None and process_alive(run.owner_pid):
            continue
        recovered.append(store.finish_run(run.id, RunResult("error", SCHEDULER_STOPPED)))
        if run.session_id is not None:
            session = store.session(run.session_id)
            if session.ended_at is None:
                store.end_session(run.session_id, "scheduler_stopped")
    return recovered


def get_routine(store: Store, name: str) -> RoutineRecord:
    routine = store.routine(name)
    if routine is None:
        known = ", ".join(r.name for r in store.routines()) or "none yet"
        raise RoutineError(f"no routine named {name!r} (routines: {known})")
    return routine


def list_routines(store: Store) -> list[RoutineRecord]:
    return store.routines()


def routine_runs(store: Store, name: str, limit: int = 20) -> list[RunRecord]:
    """A routine's runs, newest first."""
    if limit < 1:
        raise RoutineError(f"limit must be 1 or more, not {limit}")
    return store.runs(get_routine(store, name).id, limit)


# Given by the caller, which knows the tools (routines/ sits below tools/): the problem
# with a list of tool names, in words, or None (tools/tool_names.py SessionToolNames.check).
ToolListCheck = Callable[[Collection[str]], "str | None"]


def _checked(
    fields: RoutineFields,
    now: datetime,
    *,
    check_at: bool,
    check_tools: ToolListCheck | None = None,
) -> Schedule:
    if not NAME_PATTERN.match(fields.name):
        raise RoutineError(
            f"a routine name is 1-64 letters, digits, '.', '_' or '-', starting with a letter "
            f"or digit; {fields.name!r} is not one"
        )
    if not fields.prompt.strip() and not fields.recording:
        raise RoutineError(
            "a routine needs a prompt (what the agent should do when it fires) or a "
            "recording to replay (--recording NAME)"
        )
    if fields.timeout_s <= 0:
        raise RoutineError(f"the timeout is in seconds above 0, not {fields.timeout_s:g}")
    for tool in fields.tools or ():
        if not TOOL_NAME_PATTERN.match(tool):
            raise RoutineError(
                f"{tool!r} is not a tool name; give names as `deskloop tools` lists them"
            )
    problem = check_tools(fields.tools or ()) if check_tools is not None else None
    if problem is not None:
        raise RoutineError(problem)
    if fields.endpoint and not fields.endpoint.startswith(("http://", "https://")):
        raise RoutineError(
            f"the endpoint {fields.endpoint!r} is not a URL; give e.g. http://127.0.0.1:8888"
        )
    try:
        return parse_schedule(fields.schedule, fields.timezone, now=now if check_at else None)
    except ScheduleError as exc:
        raise RoutineError(str(exc)) from exc


def create_routine(
    store: Store,
    name: str,
    *,
    prompt: str,
    schedule: str,
    tools: tuple[str, ...] | None = None,
    timezone: str | None = None,
    endpoint: str = "",
    model: str = "",
    timeout_s: float | None = None,
    session_mode: SessionMode = "new",
    enabled: bool = True,
    now: datetime | None = None,
    check_tools: ToolListCheck | None = None,
    recording: str = "",
) -> RoutineRecord:
    """A new routine; its first fire is computed from `now` in its zone. With `recording`,
    each run replays that recording instead of running a model session."""
    moment = _now(now)
    if recording and not prompt.strip():
        prompt = f"replay the recording {recording}"
    fields = RoutineFields(
        name=name.strip(),
        prompt=prompt,
        schedule=schedule,
        timezone=timezone or "",
        endpoint=endpoint.rstrip("/"),
        model=model,
        enabled=enabled,
        session_mode=session_mode,
        timeout_s=DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s,
        tools=_unique(tools),
        recording=recording,
    )
    parsed = _checked(fields, moment, check_at=True, check_tools=check_tools)
    fields = replace(fields, schedule=str(parsed), timezone=parsed.zone_name)
    if store.routine(fields.name) is not None:
        raise RoutineError(
            f"a routine named {fields.name!r} exists; change it with update, or pick another name"
        )
    return store.insert_routine(fields, _epoch(parsed.first_fire(moment)) if enabled else None)


def update_routine(
    store: Store,
    name: str,
    changes: RoutineChanges,
    *,
    now: datetime | None = None,
    check_tools: ToolListCheck | None = None,
) -> RoutineRecord:
    """Change the given fields; a new schedule, zone or re-enable recomputes the next fire."""
    moment = _now(now)
    current = get_routine(store, name)
    tools = current.tools
    if changes.read_only_tools:
        tools = None
    elif changes.tools is not None:
        tools = _unique(changes.tools)
    fields = RoutineFields(
        name=(changes.new_name or current.name).strip(),
        prompt=_pick(changes.prompt, current.prompt),
        schedule=_pick(changes.schedule, current.schedule),
        timezone=_pick(changes.timezone, current.timezone),
        endpoint=_pick(changes.endpoint, current.endpoint).rstrip("/"),
        model=_pick(changes.model, current.model),
        enabled=_pick(changes.enabled, current.enabled),
        session_mode=_pick(changes.session_mode, current.session_mode),
        timeout_s=_pick(changes.timeout_s, current.timeout_s),
        tools=tools,
        recording=_pick(changes.recording, current.recording),
    )
    timing_changed = (
        changes.schedule is not None
        or changes.timezone is not None
        or (fields.enabled and not current.enabled)
    )
    # A list given now is checked; one kept as it was is not (a server may be gone for now).
    checked = check_tools if changes.tools is not None else None
    parsed = _checked(fields, moment, check_at=timing_changed, check_tools=checked)
    fields = replace(fields, schedule=str(parsed), timezone=parsed.zone_name)
    if fields.name != current.name and store.routine(fields.name) is not None:
        raise RoutineError(f"a routine named {fields.name!r} exists; pick another name")
    next_fire = current.next_fire_at
    if not fields.enabled:
        next_fire = None
    elif timing_changed or (next_fire is None and parsed.kind != "at"):
        next_fire = _epoch(parsed.first_fire(moment))
    return store.replace_routine(current.id, fields, next_fire)


def remove_routine(store: Store, name: str) -> None:
    """Delete a routine and its runs; a live run is left to finish first."""
    routine = get_routine(store, name)
    if store.live_run(routine.id) is not None:
        raise RoutineRunning(
            f"routine {name!r} is running now; wait for it to end (`deskloop routines runs "
            f"{name}`) and remove it then"
        )
    store.delete_routine(routine.id)


def request_run(store: Store, name: str) -> RoutineRecord:
    """Ask the scheduler to run `name` now; refused while a run of it is live."""
    routine = get_routine(store, name)
    recover_stale_runs(store)
    try:
        store.request_run(routine.id)
    except RoutineBusy as exc:
        raise busy_error(routine) from exc
    return get_routine(store, name)


def scheduler_running() -> int | None:
    """The pid of the scheduler running for this data dir, or None."""
    return holder_pid(lock_path(paths().data_dir))


def run_now(store: Store, name: str) -> str:
    """Start a run of `name` now; says who runs it. Refused while a run of it is live.

    The running scheduler picks the request up within `scheduler.poll_s`; with none
    running, a background `deskloop routines run NAME` does the run.
    """
    routine = get_routine(store, name)
    recover_stale_runs(store)
    if store.live_run(routine.id) is not None:
        raise busy_error(routine)
    holder = scheduler_running()
    if holder is not None:
        request_run(store, name)
        return f"the scheduler (pid {holder}) starts {name} within seconds"
    subprocess.Popen(
        [sys.executable, "-m", "deskloop", "routines", "run", name],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return f"no scheduler is running, so {name} runs in a background process"


def busy_error(routine: RoutineRecord) -> RoutineRunning:
    return RoutineRunning(
        f"routine {routine.name!r} is running now; one run at a time: wait for it to end "
        f"(`deskloop routines runs {routine.name}`)"
    )


def _pick(new: T | None, old: T) -> T:
    return old if new is None else new


def _unique(tools: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if tools is None:
        return None
    return tuple(dict.fromkeys(t.strip() for t in tools if t.strip()))


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def routine_to_json(routine: RoutineRecord) -> dict[str, Any]:
    """A routine as `routines list --json` prints it."""
    return {
        "name": routine.name,
        "prompt": routine.prompt,
        "schedule": routine.schedule,
        "timezone": routine.timezone,
        "tools": None if routine.tools is None else list(routine.tools),
        "endpoint": routine.endpoint or None,
        "model": routine.model or None,
        "timeout_s": routine.timeout_s,
        "session_mode": routine.session_mode,
        "enabled": routine.enabled,
        "next_fire_at": _iso(routine.next_fire_at),
        "run_requested": routine.run_requested_at is not None,
        "recording": routine.recording or None,
    }


def run_to_json(run: RunRecord) -> dict[str, Any]:
    """A run as `routines runs NAME --json` prints it."""
    duration = run.duration_s
    return {
        "id": run.id,
        "status": run.status,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration_s": None if duration is None else round(duration, 3),
        "output": run.output,
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "session_id": run.session_id,
        "catch_up": run.catch_up,
        "refused_tools": list(run.refused_tools),
        "recording": run.recording or None,
        "steps_done": run.steps_done,
        "failed_step": run.failed_step,
    }
