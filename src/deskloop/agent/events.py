"""The JSONL event log of one session, beside the database: one step per line.

The log is a consumer of the session's step stream, as the terminal view is: each step
is written as `step_to_json` makes it, with the time. Text deltas are left out: the
assistant's text is in the store, whole.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from deskloop.agent.steps import Step, TextDelta, step_to_json
from deskloop.settings import paths


def session_log_path(session_id: int) -> Path:
    return paths().logs_dir / f"session-{session_id}.jsonl"


class SessionLog:
    """Appends events, each flushed at once so a killed session keeps its log."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    @classmethod
    def for_session(cls, session_id: int) -> SessionLog:
        return cls(session_log_path(session_id))

    def consume(self, step: Step) -> None:
        """Write one step of the stream (a `StepConsumer`)."""
        if not isinstance(step, TextDelta):
            self._write(step_to_json(step))

    def _write(self, fields: dict[str, Any]) -> None:
        record = {"time": round(time.time(), 3), **fields}
        line = json.dumps(record, ensure_ascii=False, default=str)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_log(path: Path) -> list[dict[str, Any]]:
    """Every event of a log, in order."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
