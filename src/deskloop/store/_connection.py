"""The one SQLite connection every accessor shares, its transactions, and the store's errors."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from deskloop.errors import DeskloopError


class StoreError(DeskloopError):
    """The database cannot be opened or a record asked for does not exist."""


class UnknownSession(StoreError):
    """A session id that is not in the database."""


def dumps(value: Any) -> str:
    """JSON as the store keeps it: compact, with text as written."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Connected:
    """The base of every accessor module: one connection, one lock, nested transactions."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write; nested calls become savepoints inside the outer transaction."""
        with self._lock:
            savepoint = f"sp{self._depth}"
            self._db.execute("BEGIN IMMEDIATE" if self._depth == 0 else f"SAVEPOINT {savepoint}")
            self._depth += 1
            try:
                yield self._db
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._db.execute("ROLLBACK")
                else:
                    self._db.execute(f"ROLLBACK TO {savepoint}")
                    self._db.execute(f"RELEASE {savepoint}")
                raise
            self._depth -= 1
            self._db.execute("COMMIT" if self._depth == 0 else f"RELEASE {savepoint}")

    def _require_session(self, session_id: int) -> None:
        """Raise UnknownSession unless the session exists (every domain hangs off one)."""
        found = self._db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if found is None:
            raise UnknownSession(
                f"no session {session_id} in {self.path}; `deskloop history` lists them"
            )
