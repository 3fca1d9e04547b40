"""The conversation store: one SQLite file in WAL mode, every write in a transaction.

`Store` is the one entry point: it opens the connection, applies the ordered migrations
and gathers the accessors of each domain (one module each) over that connection.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from deskloop.settings import paths
from deskloop.store._browser_profile import BrowserProfileAccess
from deskloop.store._connection import StoreError
from deskloop.store._files import FileIndexAccess
from deskloop.store._graph import GraphAccess
from deskloop.store._messages import MessageAccess
from deskloop.store._migrations import apply_migrations
from deskloop.store._observer import ObserverAccess
from deskloop.store._records import ResumedConversation
from deskloop.store._routines import RoutineAccess
from deskloop.store._sessions import SessionAccess
from deskloop.store._tool_calls import ToolCallAccess
from deskloop.store._usage import UsageAccess

INTERRUPTED_TOOL_MESSAGE = (
    "interrupted: the session stopped before this tool finished; "
    "check the current state before trying it again"
)


class Store(
    SessionAccess,
    MessageAccess,
    ToolCallAccess,
    UsageAccess,
    RoutineAccess,
    GraphAccess,
    ObserverAccess,
    FileIndexAccess,
    BrowserProfileAccess,
):
    """Typed access to sessions, messages, tool calls, usage, routines and runs, and the
    user's own tables (knowledge graph, observer cards, file index, browser profile)."""

    @classmethod
    def open(cls, path: Path | None = None) -> Store:
        """Open (creating if needed) the database at `path`, default the data dir's deskloop.db."""
        target = path if path is not None else paths().database
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are begun and ended explicitly.
            db = sqlite3.connect(
                target, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode loses nothing committed when the process dies (SIGKILL);
            # only an OS crash or power cut can drop the last commits (sqlite.org/wal.html).
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            apply_migrations(db)
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot open the database {target}: {exc}; check the folder is writable, "
                "or move it aside to start a fresh one"
            ) from exc
        return cls(db, target)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resume(self, session_id: int) -> ResumedConversation:
        """Reopen a session; tool calls cut off by a crash get an `is_error` result first."""
        with self.transaction():
            self._require_session(session_id)
            history = self.messages(session_id)
            dangling: list[str] = []
            if history and history[-1].role == "assistant":
                dangling = [
                    str(block["id"])
                    for block in history[-1].content
                    if block.get("type") == "tool_use"
                ]
            if dangling:
                self.add_message(
                    session_id,
                    "user",
                    [
                        {
                            "type": "tool_result",
                            "tool_use_id": tool_use_id,
                            "content": [{"type": "text", "text": INTERRUPTED_TOOL_MESSAGE}],
                            "is_error": True,
                        }
                        for tool_use_id in dangling
                    ],
                )
            self._interrupt_running_calls(session_id)
            # How it last ended stays until a new run starts (agent/ending.py words it).
            self.hold_session(session_id)
        return ResumedConversation(
            self.session(session_id),
            [message.as_api_message() for message in self.messages(session_id)],
            dangling,
        )
