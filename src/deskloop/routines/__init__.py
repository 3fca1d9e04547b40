"""What a routine is: its schedule, its record and runs, and what a finished run amounts to.

The web UI and the routines tools use the names below, the same checks and words as
`deskloop routines`. What fires a routine (`deskloop.scheduler`) sits on top and imports
this package, which reads only the store.
"""

from deskloop.routines.routines import (
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
from deskloop.routines.schedule import (
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
