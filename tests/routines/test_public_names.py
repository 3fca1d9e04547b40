"""What a routine is, as the web UI and the tools see it: exactly these public names."""

import deskloop.routines


def test_the_public_names_are_the_intended_ones() -> None:
    assert sorted(deskloop.routines.__all__) == [
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
    assert all(hasattr(deskloop.routines, name) for name in deskloop.routines.__all__)
