"""The routines API the CLI, the tools and the web UI share, over a real SQLite store."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from deskloop.routines.routines import (
    SCHEDULER_STOPPED,
    RoutineChanges,
    RoutineError,
    RoutineRunning,
    create_routine,
    list_routines,
    recover_stale_runs,
    remove_routine,
    request_run,
    routine_runs,
    run_to_json,
    update_routine,
)
from deskloop.scheduler.runner import next_after_run, plan_fire
from deskloop.store import RoutineBusy, RunResult, SlotTaken, Store

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.open() as opened:
        yield opened


def test_create_computes_the_first_fire_in_the_routine_zone(store: Store) -> None:
    routine = create_routine(
        store, "standup", prompt="summarise my mail", schedule="cron:0 9 * * *",
        timezone="Europe/Paris", now=NOW,
    )  # fmt: skip
    # 09:00 in Paris (UTC+1 in December) is 08:00 UTC; that instant is now, so tomorrow.
    assert routine.next_fire_at == datetime(2026, 12, 2, 8, 0, tzinfo=UTC).timestamp()
    assert routine.timezone == "Europe/Paris"
    assert routine.tools is None  # read-class tools only
    every = create_routine(store, "poll", prompt="p", schedule="every:600", now=NOW)
    assert every.next_fire_at == (NOW + timedelta(seconds=600)).timestamp()
    assert [r.name for r in list_routines(store)] == ["poll", "standup"]


def test_bad_fields_are_refused_with_what_to_write(store: Store) -> None:
    cases = {
        "invalid cron field hour": dict(schedule="cron:0 99 * * *"),
        "unknown time zone 'Atlantis/City'": dict(schedule="every:60", timezone="Atlantis/City"),
        "in the past": dict(schedule="at:2026-11-30T09:00"),
        "not a tool name": dict(schedule="every:60", tools=("type text",)),
        "is not a URL": dict(schedule="every:60", endpoint="gpu-box:8888"),
    }
    for said, fields in cases.items():
        with pytest.raises(RoutineError, match=said):
            create_routine(store, "r", prompt="p", now=NOW, **fields)  # type: ignore[arg-type]
    with pytest.raises(RoutineError, match="routine name"):
        create_routine(store, "no spaces", prompt="p", schedule="every:60", now=NOW)
    create_routine(store, "r", prompt="p", schedule="every:60", now=NOW)
    with pytest.raises(RoutineError, match="exists"):
        create_routine(store, "r", prompt="p", schedule="every:60", now=NOW)
    assert [r.name for r in list_routines(store)] == ["r"]


def test_update_changes_only_what_is_given_and_recomputes_timing(store: Store) -> None:
    create_routine(store, "r", prompt="p", schedule="every:60", tools=("observe",), now=NOW)
    later = NOW + timedelta(hours=1)
    changed = update_routine(store, "r", RoutineChanges(schedule="cron:30 * * * *"), now=later)
    assert changed.prompt == "p" and changed.tools == ("observe",)
    assert changed.next_fire_at == (later + timedelta(minutes=30)).timestamp()
    paused = update_routine(store, "r", RoutineChanges(enabled=False), now=later)
    assert not paused.enabled and paused.next_fire_at is None
    back = update_routine(store, "r", RoutineChanges(enabled=True, read_only_tools=True), now=later)
    assert back.enabled and back.next_fire_at is not None and back.tools is None
    with pytest.raises(RoutineError, match="no routine named 'nope'"):
        update_routine(store, "nope", RoutineChanges(prompt="x"))


def test_one_live_run_per_routine_and_one_run_per_slot(store: Store) -> None:
    routine = create_routine(store, "r", prompt="p", schedule="every:60", now=NOW)
    slot = routine.next_fire_at
    claim = dict(owner_pid=os.getpid(), next_fire_at=None, enabled=True)
    run = store.start_run(routine, slot=slot, catch_up=False, **claim)  # type: ignore[arg-type]
    with pytest.raises(RoutineBusy):
        store.start_run(routine, slot=None, catch_up=False, **claim)  # type: ignore[arg-type]
    with pytest.raises(RoutineRunning, match="running now"):
        request_run(store, "r")
    with pytest.raises(RoutineRunning, match="running now"):
        remove_routine(store, "r")
    store.finish_run(run.id, RunResult("ok", "done", 10, 2))
    with pytest.raises(SlotTaken):
        store.start_run(routine, slot=slot, catch_up=False, **claim)  # type: ignore[arg-type]
    request_run(store, "r")  # free again
    (only,) = routine_runs(store, "r")
    data = run_to_json(only)
    assert set(data) == {
        "id", "status", "started_at", "finished_at", "duration_s", "output", "input_tokens",
        "output_tokens", "session_id", "catch_up", "refused_tools", "recording", "steps_done",
        "failed_step",
    }  # fmt: skip
    assert data["status"] == "ok" and data["input_tokens"] == 10 and data["catch_up"] is False


def test_a_run_left_by_a_dead_process_becomes_an_error(store: Store) -> None:
    routine = create_routine(store, "r", prompt="p", schedule="every:60", now=NOW)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    session = store.create_session(title="routine r")
    run = store.start_run(
        routine, slot=1.0, catch_up=False, owner_pid=gone.pid, next_fire_at=None, enabled=True
    )
    store.set_run_session(run.id, session.id)
    mine = create_routine(store, "mine", prompt="p", schedule="every:60", now=NOW)
    live = store.start_run(
        mine, slot=1.0, catch_up=False, owner_pid=os.getpid(), next_fire_at=None, enabled=True
    )
    (recovered,) = recover_stale_runs(store)
    assert recovered.id == run.id and recovered.status == "error"
    assert recovered.output == SCHEDULER_STOPPED
    assert store.session(session.id).end_reason == "scheduler_stopped"
    assert store.run(live.id).status == "running"  # its owner is alive


def test_missed_slots_collapse_into_one_catch_up_fire(store: Store) -> None:
    routine = create_routine(store, "hourly", prompt="p", schedule="cron:0 * * * *", now=NOW)
    assert routine.next_fire_at is not None
    down_until = routine.next_fire_at + 5 * 3600 + 60  # five more slots passed meanwhile
    fire = plan_fire(routine, down_until, scheduler_started=down_until - 1)
    assert fire.catch_up and fire.missed == 6 and fire.slot == routine.next_fire_at
    assert fire.next_fire_at == routine.next_fire_at + 6 * 3600  # the next one ahead
    on_time = plan_fire(routine, routine.next_fire_at + 0.5, scheduler_started=NOW.timestamp())
    assert not on_time.catch_up and on_time.missed == 1


def test_at_disables_itself_and_every_counts_from_the_end(store: Store) -> None:
    once = create_routine(
        store, "once", prompt="p", schedule="at:2026-12-02T10:00", timezone="UTC", now=NOW
    )
    assert once.next_fire_at is not None
    fire = plan_fire(once, once.next_fire_at + 1, scheduler_started=NOW.timestamp())
    assert fire.enabled is False and fire.next_fire_at is None
    every = create_routine(store, "every", prompt="p", schedule="every:600", now=NOW)
    assert next_after_run(every, 1_000_000.0) == 1_000_600.0
