"""Tool calls: each call's input when it starts; status, result and duration when it ends."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from deskloop.store._connection import Connected, StoreError, dumps
from deskloop.store._records import ContentBlock, ToolCallRecord


class ToolCallAccess(Connected):
    def start_tool_call(self, session_id: int, tool_use_id: str, name: str, input: Any) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO tool_calls (session_id, tool_use_id, name, input_json, started_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (session_id, tool_use_id, name, dumps(input), time.time()),
            )

    def finish_tool_call(
        self,
        session_id: int,
        tool_use_id: str,
        *,
        status: str,
        result: Sequence[ContentBlock],
        is_error: bool,
        duration_s: float,
    ) -> None:
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE tool_calls SET status = ?, result_json = ?, is_error = ?, duration_s = ?"
                " WHERE session_id = ? AND tool_use_id = ?",
                (status, dumps(list(result)), int(is_error), duration_s, session_id, tool_use_id),
            )
            if cursor.rowcount == 0:
                raise StoreError(f"no tool call {tool_use_id} was started in session {session_id}")

    def tool_calls(self, session_id: int) -> list[ToolCallRecord]:
        rows = self._db.execute(
            "SELECT session_id, tool_use_id, name, input_json, status, result_json, is_error,"
            " started_at, duration_s FROM tool_calls WHERE session_id = ? ORDER BY id",
            (session_id,),
        ).fetchall()
        return [
            ToolCallRecord(
                row[0],
                row[1],
                row[2],
                json.loads(row[3]),
                row[4],
                None if row[5] is None else json.loads(row[5]),
                bool(row[6]),
                row[7],
                row[8],
            )
            for row in rows
        ]

    def _interrupt_running_calls(self, session_id: int) -> None:
        """Calls a crash left running are marked interrupted (inside the caller's transaction)."""
        self._db.execute(
            "UPDATE tool_calls SET status = 'interrupted', is_error = 1"
            " WHERE session_id = ? AND status = 'running'",
            (session_id,),
        )
