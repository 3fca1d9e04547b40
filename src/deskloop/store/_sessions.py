"""Sessions: one row per conversation, with its endpoint, model, and how it ended."""

from __future__ import annotations

import os
import time
from typing import cast

from deskloop.store._connection import Connected
from deskloop.store._records import SessionRecord

_COLUMNS = (
    "id, title, endpoint, model, system_prompt, started_at, ended_at, end_reason,"
    " end_detail, owner_pid"
)
# The reason a session has while one of its runs is under way.
RUNNING = "running"


class SessionAccess(Connected):
    def create_session(
        self, *, title: str = "", endpoint: str = "", model: str = "", system_prompt: str = ""
    ) -> SessionRecord:
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO sessions"
                " (title, endpoint, model, system_prompt, started_at, owner_pid)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (title, endpoint, model, system_prompt, time.time(), os.getpid()),
            )
            session_id = cast(int, cursor.lastrowid)
        return self.session(session_id)

    def session(self, session_id: int) -> SessionRecord:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        if row is None:
            self._require_session(session_id)  # raises UnknownSession, with what to do
        return SessionRecord(*row)

    def sessions(self, limit: int = 50) -> list[SessionRecord]:
        """The most recent sessions first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM sessions ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [SessionRecord(*row) for row in rows]

    def end_session(self, session_id: int, reason: str, detail: str = "") -> None:
        """Record how the session's last run ended (`reason` a code, `detail` its words)."""
        self._require_session(session_id)
        with self.transaction() as db:
            db.execute(
                "UPDATE sessions SET ended_at = ?, end_reason = ?, end_detail = ? WHERE id = ?",
                (time.time(), reason, detail, session_id),
            )

    def mark_running(self, session_id: int) -> None:
        """A run of the session starts in this process."""
        with self.transaction() as db:
            db.execute(
                "UPDATE sessions SET ended_at = NULL, end_reason = ?, end_detail = '',"
                " owner_pid = ? WHERE id = ?",
                (RUNNING, os.getpid(), session_id),
            )

    def hold_session(self, session_id: int) -> None:
        """This process has the session open (resumed); how it last ended stays."""
        with self.transaction() as db:
            db.execute("UPDATE sessions SET owner_pid = ? WHERE id = ?", (os.getpid(), session_id))

    def release_session(self, session_id: int) -> None:
        """This process closed the session; a run still marked running was cut off."""
        with self.transaction() as db:
            db.execute(
                "UPDATE sessions SET owner_pid = NULL WHERE id = ? AND owner_pid = ?",
                (session_id, os.getpid()),
            )
            db.execute(
                "UPDATE sessions SET ended_at = ?, end_reason = 'interrupted',"
                " end_detail = 'the session was closed during a turn'"
                " WHERE id = ? AND end_reason = ?",
                (time.time(), session_id, RUNNING),
            )

    def delete_session(self, session_id: int) -> None:
        """Remove a session with its messages, tool calls and usage (a session that never
        reached its model is not worth keeping)."""
        self._require_session(session_id)
        with self.transaction() as db:
            db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
