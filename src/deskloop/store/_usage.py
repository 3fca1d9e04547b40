"""Usage: tokens in and out, cache hits and model time, one row per turn."""

from __future__ import annotations

from deskloop.store._connection import Connected
from deskloop.store._records import TurnUsage


class UsageAccess(Connected):
    def record_usage(self, session_id: int, usage: TurnUsage) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO turn_usage (session_id, turn, input_tokens, output_tokens,"
                " cache_read_tokens, model_seconds, stop_reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    usage.turn,
                    usage.input_tokens,
                    usage.output_tokens,
                    usage.cache_read_tokens,
                    usage.model_seconds,
                    usage.stop_reason,
                ),
            )

    def usage(self, session_id: int) -> list[TurnUsage]:
        rows = self._db.execute(
            "SELECT turn, input_tokens, output_tokens, cache_read_tokens, model_seconds,"
            " stop_reason FROM turn_usage WHERE session_id = ? ORDER BY turn",
            (session_id,),
        ).fetchall()
        return [TurnUsage(*row) for row in rows]
