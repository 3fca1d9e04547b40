"""Routines: schedules, the routines API over the store, and the scheduler that fires them.

The web UI and the tools use the names below; `deskloop scheduler` runs
`deskloop.scheduler.runner.Scheduler` and the CLI lives in `deskloop.scheduler.commands`.
"""

from deskloop.scheduler.routines import (
    READ_ONLY_WORDS,
    RoutineChanges,
    RoutineError,
    RoutineRunning,
    create_routine,
    get_routine,
    list_routines,
    remove_routine,
    request_run,
    routine_runs,
    routine_to_json,
    run_now,
    run_to_json,
    scheduler_running,
    tools_words,
    update_routine,
)
from deskloop.scheduler.schedule import (
    Schedule,
    ScheduleError,
    machine_zone_name,
    parse_schedule,
)
from deskloop.store import RoutineRecord as Routine
from deskloop.store import RunRecord as RoutineRun
from deskloop.store import RunStatus

__all__ = [
    "READ_ONLY_WORDS",
    "Routine",
    "RoutineChanges",
    "RoutineError",
    "RoutineRun",
    "RoutineRunning",
    "RunStatus",
    "Schedule",
    "ScheduleError",
    "create_routine",
    "get_routine",
    "list_routines",
    "machine_zone_name",
    "parse_schedule",
    "remove_routine",
    "request_run",
    "routine_runs",
    "routine_to_json",
    "run_now",
    "run_to_json",
    "scheduler_running",
    "tools_words",
    "update_routine",
]
