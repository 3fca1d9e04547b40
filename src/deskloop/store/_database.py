"""The conversation store: one SQLite file in WAL mode, every write in a transaction."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from deskloop.errors import DeskloopError
from deskloop.settings import paths
from deskloop.store._migrations import apply_migrations
from deskloop.store._records import (
    ContentBlock,
    MessageRecord,
    ResumedConversation,
    Role,
    SearchHit,
    SessionRecord,
    ToolCallRecord,
    TurnUsage,
)

INTERRUPTED_TOOL_MESSAGE = (
    "interrupted: the session stopped before this tool finished; "
    "check the current state before trying it again"
)


class StoreError(DeskloopError):
    """The database cannot be opened or a record asked for does not exist."""


class UnknownSession(StoreError):
    """A session id that is not in the database."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _blocks(content: str | Sequence[ContentBlock]) -> list[ContentBlock]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [dict(block) for block in content]


def searchable_text(blocks: Sequence[ContentBlock]) -> str:
    """The words of a message that full-text search should find: text, tool inputs and results."""
    parts: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            parts.append(f"{block.get('name', '')} {_dumps(block.get('input', {}))}")
        elif kind == "tool_result":
            inner = block.get("content", "")
            if isinstance(inner, str):
                parts.append(inner)
            elif isinstance(inner, list):
                parts.extend(str(b.get("text", "")) for b in inner if b.get("type") == "text")
    return "\n".join(part for part in parts if part)


def _fts_query(text: str) -> str:
    """Each word as a quoted FTS5 string, so punctuation in user text is never query syntax."""
    words = text.split()
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


class Store:
    """Typed access to sessions, messages, tool calls and usage in one SQLite database."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0

    @classmethod
    def open(cls, path: Path | None = None) -> Store:
        """Open (creating if needed) the database at `path`, default the data dir's deskloop.db."""
        target = path if path is not None else paths().database
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are begun and ended explicitly below.
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

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

    # Sessions

    def create_session(
        self, *, title: str = "", endpoint: str = "", model: str = "", system_prompt: str = ""
    ) -> SessionRecord:
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO sessions (title, endpoint, model, system_prompt, started_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (title, endpoint, model, system_prompt, time.time()),
            )
            session_id = cast(int, cursor.lastrowid)
        return self.session(session_id)

    def session(self, session_id: int) -> SessionRecord:
        row = self._db.execute(
            "SELECT id, title, endpoint, model, system_prompt, started_at, ended_at, end_reason"
            " FROM sessions WHERE id = ?",
            (session_id,),
        ).fetchone()
        if row is None:
            raise UnknownSession(
                f"no session {session_id} in {self.path}; `deskloop history` lists them"
            )
        return SessionRecord(*row)

    def sessions(self, limit: int = 50) -> list[SessionRecord]:
        """The most recent sessions first."""
        rows = self._db.execute(
            "SELECT id, title, endpoint, model, system_prompt, started_at, ended_at, end_reason"
            " FROM sessions ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [SessionRecord(*row) for row in rows]

    def end_session(self, session_id: int, reason: str) -> None:
        self.session(session_id)
        with self.transaction() as db:
            db.execute(
                "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ?",
                (time.time(), reason, session_id),
            )

    # Messages

    def add_message(
        self, session_id: int, role: Role, content: str | Sequence[ContentBlock]
    ) -> MessageRecord:
        """Append one message with its full content blocks."""
        blocks = _blocks(content)
        now = time.time()
        with self.transaction() as db:
            self.session(session_id)
            (position,) = db.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 FROM messages WHERE session_id = ?",
                (session_id,),
            ).fetchone()
            cursor = db.execute(
                "INSERT INTO messages (session_id, position, role, content_json, text, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, position, role, _dumps(blocks), searchable_text(blocks), now),
            )
            message_id = cast(int, cursor.lastrowid)
        return MessageRecord(message_id, session_id, position, role, blocks, now)

    def messages(self, session_id: int) -> list[MessageRecord]:
        rows = self._db.execute(
            "SELECT id, session_id, position, role, content_json, created_at FROM messages"
            " WHERE session_id = ? ORDER BY position",
            (session_id,),
        ).fetchall()
        return [
            MessageRecord(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5])
            for row in rows
        ]

    # Tool calls

    def start_tool_call(self, session_id: int, tool_use_id: str, name: str, input: Any) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO tool_calls (session_id, tool_use_id, name, input_json, started_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (session_id, tool_use_id, name, _dumps(input), time.time()),
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
                (status, _dumps(list(result)), int(is_error), duration_s, session_id, tool_use_id),
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

    # Usage

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

    # Search

    def search(self, text: str, limit: int = 20) -> list[SearchHit]:
        """Messages whose text holds every word of `text`, best match first."""
        query = _fts_query(text)
        if not query:
            return []
        rows = self._db.execute(
            "SELECT m.session_id, m.id, m.role,"
            " snippet(messages_fts, 0, '[', ']', '…', 12), m.created_at"
            " FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid"
            " WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?",
            (query, limit),
        ).fetchall()
        return [SearchHit(*row) for row in rows]

    # Resume

    def resume(self, session_id: int) -> ResumedConversation:
        """Reopen a session; tool calls cut off by a crash get an `is_error` result first."""
        with self.transaction() as db:
            self.session(session_id)
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
            db.execute(
                "UPDATE tool_calls SET status = 'interrupted', is_error = 1"
                " WHERE session_id = ? AND status = 'running'",
                (session_id,),
            )
            db.execute(
                "UPDATE sessions SET ended_at = NULL, end_reason = NULL WHERE id = ?",
                (session_id,),
            )
        return ResumedConversation(
            self.session(session_id),
            [message.as_api_message() for message in self.messages(session_id)],
            dangling,
        )
