"""Routines and their runs: the rows the scheduler fires from and records into.

Two indexes carry the promises the scheduler makes: one live run per routine (and one
live observer), and one run per scheduled slot, so a restart cannot fire a slot twice.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from deskloop.store._connection import Connected

RunStatus = Literal["running", "ok", "error", "timeout", "empty"]
RUN_STATUSES: tuple[RunStatus, ...] = ("running", "ok", "error", "timeout", "empty")
RunKind = Literal["routine", "observer"]
SessionMode = Literal["new", "resume"]

_ROUTINE_COLUMNS = (
    "id, name, prompt, schedule, timezone, endpoint, model, enabled, session_mode, timeout_s,"
    " tools_json, next_fire_at, run_requested_at, last_session_id, created_at, updated_at,"
    " recording"
)
_RUN_COLUMNS = (
    "id, kind, routine_id, status, slot, catch_up, started_at, finished_at, output,"
    " input_tokens, output_tokens, session_id, refused_tools_json, owner_pid,"
    " watched_session_id, watched_upto, recording, steps_done, failed_step"
)


class RoutineBusy(Exception):
    """A run of this routine (or an observer run) is live; the caller says so in words."""


class SlotTaken(Exception):
    """This scheduled slot already has a run: firing it again would repeat it."""


@dataclass(frozen=True, slots=True)
class RoutineRecord:
    id: int
    name: str
    prompt: str
    schedule: str
    timezone: str
    endpoint: str
    model: str
    enabled: bool
    session_mode: SessionMode
    timeout_s: float
    # None: no list was given, so the routine may use read-class tools only.
    tools: tuple[str, ...] | None
    next_fire_at: float | None
    run_requested_at: float | None
    last_session_id: int | None
    created_at: float
    updated_at: float
    # A routine whose body is a recording: each run replays it instead of a model session.
    recording: str = ""

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> RoutineRecord:
        tools = None if row[10] is None else tuple(json.loads(row[10]))
        return cls(
            row[0], row[1], row[2], row[3], row[4], row[5], row[6], bool(row[7]),
            row[8], row[9], tools, row[11], row[12], row[13], row[14], row[15], row[16],
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    kind: RunKind
    routine_id: int | None
    status: RunStatus
    slot: float | None  # the scheduled fire this run answers; None for "run now"
    catch_up: bool
    started_at: float
    finished_at: float | None
    output: str
    input_tokens: int
    output_tokens: int
    session_id: int | None
    refused_tools: tuple[str, ...]
    owner_pid: int | None
    # Observer runs: the conversation read, and the message position read up to.
    watched_session_id: int | None
    watched_upto: int | None
    # Replays (a routine's recording, or a bare `deskloop replay`): the recording, how
    # many of its steps were done, and the step that failed (None: none did).
    recording: str = ""
    steps_done: int | None = None
    failed_step: int | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> RunRecord:
        return cls(
            row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7], row[8],
            row[9], row[10], row[11], tuple(json.loads(row[12])), row[13], row[14], row[15],
            row[16], row[17], row[18],
        )  # fmt: skip

    @property
    def duration_s(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at


@dataclass(frozen=True, slots=True)
class RoutineFields:
    """Every column a person (or the model) sets on a routine."""

    name: str
    prompt: str
    schedule: str
    timezone: str
    endpoint: str = ""
    model: str = ""
    enabled: bool = True
    session_mode: SessionMode = "new"
    timeout_s: float = 900.0
    tools: tuple[str, ...] | None = None
    recording: str = ""


@dataclass(frozen=True, slots=True)
class RunResult:
    status: RunStatus
    output: str
    input_tokens: int = 0
    output_tokens: int = 0
    refused_tools: tuple[str, ...] = ()


def _tools_json(tools: tuple[str, ...] | None) -> str | None:
    return None if tools is None else json.dumps(list(tools))


class RoutineAccess(Connected):
    """Routines and their runs (the observer's runs too)."""

    # Routines

    def routine(self, name: str) -> RoutineRecord | None:
        row = self._db.execute(
            f"SELECT {_ROUTINE_COLUMNS} FROM routines WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else RoutineRecord.from_row(row)

    def routine_by_id(self, routine_id: int) -> RoutineRecord | None:
        row = self._db.execute(
            f"SELECT {_ROUTINE_COLUMNS} FROM routines WHERE id = ?", (routine_id,)
        ).fetchone()
        return None if row is None else RoutineRecord.from_row(row)

    def routines(self) -> list[RoutineRecord]:
        rows = self._db.execute(f"SELECT {_ROUTINE_COLUMNS} FROM routines ORDER BY name")
        return [RoutineRecord.from_row(row) for row in rows.fetchall()]

    def insert_routine(self, fields: RoutineFields, next_fire_at: float | None) -> RoutineRecord:
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO routines (name, prompt, schedule, timezone, endpoint, model,"
                " enabled, session_mode, timeout_s, tools_json, next_fire_at, created_at,"
                " updated_at, recording) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    fields.name, fields.prompt, fields.schedule, fields.timezone,
                    fields.endpoint, fields.model, int(fields.enabled), fields.session_mode,
                    fields.timeout_s, _tools_json(fields.tools), next_fire_at, now, now,
                    fields.recording,
                ),
            )  # fmt: skip
        record = self.routine(fields.name)
        assert record is not None
        return record

    def replace_routine(
        self, routine_id: int, fields: RoutineFields, next_fire_at: float | None
    ) -> RoutineRecord:
        with self.transaction() as db:
            db.execute(
                "UPDATE routines SET name = ?, prompt = ?, schedule = ?, timezone = ?,"
                " endpoint = ?, model = ?, enabled = ?, session_mode = ?, timeout_s = ?,"
                " tools_json = ?, next_fire_at = ?, updated_at = ?, recording = ? WHERE id = ?",
                (
                    fields.name, fields.prompt, fields.schedule, fields.timezone,
                    fields.endpoint, fields.model, int(fields.enabled), fields.session_mode,
                    fields.timeout_s, _tools_json(fields.tools), next_fire_at, time.time(),
                    fields.recording, routine_id,
                ),
            )  # fmt: skip
        record = self.routine_by_id(routine_id)
        assert record is not None
        return record

    def delete_routine(self, routine_id: int) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM routines WHERE id = ?", (routine_id,))

    def set_next_fire(self, routine_id: int, next_fire_at: float | None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE routines SET next_fire_at = ? WHERE id = ?", (next_fire_at, routine_id)
            )

    def request_run(self, routine_id: int) -> None:
        """Ask the scheduler to run this routine now (it picks the request up within seconds)."""
        if self.live_run(routine_id) is not None:
            raise RoutineBusy(routine_id)
        with self.transaction() as db:
            db.execute(
                "UPDATE routines SET run_requested_at = ? WHERE id = ?", (time.time(), routine_id)
            )

    def set_last_session(self, routine_id: int, session_id: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE routines SET last_session_id = ? WHERE id = ?", (session_id, routine_id)
            )

    def due_routines(self, now: float) -> list[RoutineRecord]:
        """Routines whose time has come or whose run was asked for, with no run live."""
        rows = self._db.execute(
            f"SELECT {_ROUTINE_COLUMNS} FROM routines r WHERE"
            " (run_requested_at IS NOT NULL OR (enabled AND next_fire_at <= ?))"
            " AND NOT EXISTS (SELECT 1 FROM routine_runs x"
            "  WHERE x.routine_id = r.id AND x.status = 'running')"
            " ORDER BY COALESCE(run_requested_at, next_fire_at)",
            (now,),
        )
        return [RoutineRecord.from_row(row) for row in rows.fetchall()]

    def next_wake(self) -> float | None:
        """The earliest time any enabled routine is due, or None when none is scheduled."""
        (when,) = self._db.execute(
            "SELECT MIN(next_fire_at) FROM routines WHERE enabled AND next_fire_at IS NOT NULL"
        ).fetchone()
        return cast(float | None, when)

    # Runs

    def start_run(
        self,
        routine: RoutineRecord,
        *,
        slot: float | None,
        catch_up: bool,
        owner_pid: int,
        next_fire_at: float | None,
        enabled: bool,
    ) -> RunRecord:
        """Claim a fire: the run row, the routine's next fire and its cleared request, at once.

        Raises RoutineBusy when a run is live and SlotTaken when this slot was run before.
        """
        try:
            with self.transaction() as db:
                cursor = db.execute(
                    "INSERT INTO routine_runs (kind, routine_id, slot, catch_up, started_at,"
                    " owner_pid) VALUES ('routine', ?, ?, ?, ?, ?)",
                    (routine.id, slot, int(catch_up), time.time(), owner_pid),
                )
                db.execute(
                    "UPDATE routines SET next_fire_at = ?, enabled = ?, run_requested_at = NULL"
                    " WHERE id = ?",
                    (next_fire_at, int(enabled), routine.id),
                )
                run_id = cast(int, cursor.lastrowid)
        except sqlite3.IntegrityError as exc:
            if "slot" in str(exc):
                raise SlotTaken(routine.name) from exc
            raise RoutineBusy(routine.name) from exc
        return self.run(run_id)

    def start_observer_run(
        self, *, watched_session_id: int, watched_upto: int, owner_pid: int
    ) -> RunRecord:
        """Claim the one observer slot; RoutineBusy when an observer run is live."""
        try:
            with self.transaction() as db:
                cursor = db.execute(
                    "INSERT INTO routine_runs (kind, started_at, owner_pid, watched_session_id,"
                    " watched_upto) VALUES ('observer', ?, ?, ?, ?)",
                    (time.time(), owner_pid, watched_session_id, watched_upto),
                )
                run_id = cast(int, cursor.lastrowid)
        except sqlite3.IntegrityError as exc:
            raise RoutineBusy("observer") from exc
        return self.run(run_id)

    def start_replay_run(self, recording: str, *, owner_pid: int) -> RunRecord:
        """A run of a recording replayed on its own, not by a routine."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO routine_runs (kind, started_at, owner_pid, recording)"
                " VALUES ('routine', ?, ?, ?)",
                (time.time(), owner_pid, recording),
            )
            run_id = cast(int, cursor.lastrowid)
        return self.run(run_id)

    def set_run_steps(
        self, run_id: int, recording: str, steps_done: int, failed_step: int | None
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE routine_runs SET recording = ?, steps_done = ?, failed_step = ?"
                " WHERE id = ?",
                (recording, steps_done, failed_step, run_id),
            )

    def recording_runs(self, recording: str, limit: int = 20) -> list[RunRecord]:
        """Every run that replayed `recording` (its routines' and its own), newest first."""
        rows = self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM routine_runs WHERE recording = ? ORDER BY id DESC LIMIT ?",
            (recording, limit),
        )
        return [RunRecord.from_row(row) for row in rows.fetchall()]

    def set_run_session(self, run_id: int, session_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE routine_runs SET session_id = ? WHERE id = ?", (session_id, run_id))

    def finish_run(self, run_id: int, result: RunResult) -> RunRecord:
        with self.transaction() as db:
            db.execute(
                "UPDATE routine_runs SET status = ?, finished_at = ?, output = ?,"
                " input_tokens = ?, output_tokens = ?, refused_tools_json = ?"
                " WHERE id = ? AND status = 'running'",
                (
                    result.status, time.time(), result.output, result.input_tokens,
                    result.output_tokens, json.dumps(list(result.refused_tools)), run_id,
                ),
            )  # fmt: skip
        return self.run(run_id)

    def run(self, run_id: int) -> RunRecord:
        row = self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM routine_runs WHERE id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise KeyError(run_id)
        return RunRecord.from_row(row)

    def runs(self, routine_id: int, limit: int = 20) -> list[RunRecord]:
        """A routine's runs, newest first."""
        rows = self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM routine_runs WHERE routine_id = ?"
            " ORDER BY id DESC LIMIT ?",
            (routine_id, limit),
        )
        return [RunRecord.from_row(row) for row in rows.fetchall()]

    def observer_runs(self, limit: int = 20) -> list[RunRecord]:
        rows = self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM routine_runs WHERE kind = 'observer'"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [RunRecord.from_row(row) for row in rows.fetchall()]

    def observer_runs_of(self, session_id: int) -> list[RunRecord]:
        rows = self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM routine_runs WHERE kind = 'observer'"
            " AND watched_session_id = ? ORDER BY id",
            (session_id,),
        )
        return [RunRecord.from_row(row) for row in rows.fetchall()]

    def last_message_before(self, when: float) -> int:
        """The id of the newest message written before `when` (0: none)."""
        (found,) = self._db.execute(
            "SELECT COALESCE(MAX(id), 0) FROM messages WHERE created_at < ?", (when,)
        ).fetchone()
        return int(found)

    def conversations_changed_since(self, message_id: int) -> tuple[list[int], int]:
        """Sessions that gained messages after `message_id`, leaving out routine and observer
        sessions, and the newest message id now."""
        (newest,) = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()
        rows = self._db.execute(
            "SELECT DISTINCT m.session_id FROM messages m WHERE m.id > ?"
            " AND NOT EXISTS (SELECT 1 FROM routine_runs r WHERE r.session_id = m.session_id)",
            (message_id,),
        )
        return [row[0] for row in rows.fetchall()], int(newest)

    def live_run(self, routine_id: int) -> RunRecord | None:
        row = self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM routine_runs WHERE routine_id = ? AND status = 'running'",
            (routine_id,),
        ).fetchone()
        return None if row is None else RunRecord.from_row(row)

    def live_runs(self) -> list[RunRecord]:
        rows = self._db.execute(
            f"SELECT {_RUN_COLUMNS} FROM routine_runs WHERE status = 'running' ORDER BY id"
        )
        return [RunRecord.from_row(row) for row in rows.fetchall()]
