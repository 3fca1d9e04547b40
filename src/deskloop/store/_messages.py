"""Messages: each turn's content blocks in order, and full-text search over their words."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import cast

from deskloop.store._connection import Connected, dumps
from deskloop.store._records import ContentBlock, MessageRecord, Role, SearchHit


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
            parts.append(f"{block.get('name', '')} {dumps(block.get('input', {}))}")
        elif kind == "tool_result":
            inner = block.get("content", "")
            if isinstance(inner, str):
                parts.append(inner)
            elif isinstance(inner, list):
                parts.extend(str(b.get("text", "")) for b in inner if b.get("type") == "text")
    return "\n".join(part for part in parts if part)


# Matching messages read to group them by session; counts stop there.
SEARCH_ROWS = 5000


def _fts_query(text: str) -> str:
    """Each word as a quoted FTS5 prefix (`hel` and `hel*` find hello); never query syntax."""
    words = [word.rstrip("*") for word in text.split()]
    return " ".join('"' + word.replace('"', '""') + '"*' for word in words if word)


class MessageAccess(Connected):
    def add_message(
        self, session_id: int, role: Role, content: str | Sequence[ContentBlock]
    ) -> MessageRecord:
        """Append one message with its full content blocks."""
        blocks = _blocks(content)
        now = time.time()
        with self.transaction() as db:
            self._require_session(session_id)
            (position,) = db.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 FROM messages WHERE session_id = ?",
                (session_id,),
            ).fetchone()
            cursor = db.execute(
                "INSERT INTO messages (session_id, position, role, content_json, text, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, position, role, dumps(blocks), searchable_text(blocks), now),
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

    def search(self, text: str, limit: int = 20) -> list[SearchHit]:
        """Sessions with a message holding a word that starts with each word of `text`:
        one hit per session (its best message, and how many match), best session first."""
        query = _fts_query(text)
        if not query:
            return []
        rows = self._db.execute(
            "SELECT m.session_id, m.id, m.role,"
            " snippet(messages_fts, 0, '[', ']', '…', 12), m.created_at"
            " FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid"
            " WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?",
            (query, SEARCH_ROWS),
        ).fetchall()
        best: dict[int, SearchHit] = {}
        counts: dict[int, int] = {}
        for row in rows:
            if row[0] not in best and len(best) < limit:
                best[row[0]] = SearchHit(*row)
            counts[row[0]] = counts.get(row[0], 0) + 1
        return [replace(hit, hits=counts[session]) for session, hit in best.items()]
