"""`deskloop history`: past sessions, one transcript, or a full-text search; reads only the store."""

from __future__ import annotations

import argparse
import shutil
import time
from typing import Any

from deskloop.agent.text import short
from deskloop.command_line import print_table
from deskloop.store import MessageRecord, SessionRecord, Store

# Lines of one text block a transcript shows before it says how many more there are.
TRANSCRIPT_LINES = 8


def history_command(args: argparse.Namespace) -> int:
    """List sessions, search their messages, or print one session's transcript."""
    with Store.open() as store:
        if args.search:
            return _search(store, args.search, args.limit)
        if args.session is not None:
            _transcript(store, store.session(args.session))
            return 0
        records = store.sessions(limit=args.limit)
        if not records:
            print("no sessions yet: `deskloop run TASK` or `deskloop chat` starts one")
            return 0
        rows = [("ID", "STARTED", "ENDED", "TITLE")]
        for record in records:
            title = record.title or first_words(store.messages(record.id)) or "(no messages)"
            rows.append(
                (str(record.id), _when(record.started_at), record.end_reason or "open", title)
            )
        _print_one_line_each(rows)
    return 0


def first_words(messages: list[MessageRecord]) -> str:
    """A title for a session stored without one: the first thing the person wrote."""
    for message in messages:
        if message.role != "user":
            continue
        for block in message.content:
            if block.get("type") == "text" and str(block.get("text", "")).strip():
                return str(block["text"]).strip()
    return ""


def _search(store: Store, text: str, limit: int) -> int:
    hits = store.search(text, limit=limit)
    if not hits:
        print(f"no sessions match {text!r}")
        return 0
    rows = [("ID", "WHEN", "WHO", "MATCH")]
    for hit in hits:
        who = "you" if hit.role == "user" else "agent"
        rows.append((str(hit.session_id), _when(hit.created_at), who, hit.snippet))
    _print_one_line_each(rows)
    return 0


def _transcript(store: Store, record: SessionRecord) -> None:
    title = record.title or first_words(store.messages(record.id))
    print(f"session {record.id}: {short(title, 200)}")
    ended = record.end_reason or "still open"
    print(f"  {record.model} at {record.endpoint}; started {_when(record.started_at)}; {ended}")
    for message in store.messages(record.id):
        for block in message.content:
            print(transcript_line(message.role, block))


def transcript_line(role: str, block: dict[str, Any], *, one_line: bool = False) -> str:
    """One content block as a transcript shows it: who said it, or the call and its result."""
    kind = block.get("type")
    if kind == "text":
        who = "you" if role == "user" else "agent"
        text = str(block.get("text", ""))
        said = short(text, 150) if one_line else _some_lines(text, "      ")
        return f"{who}> {said}"
    if kind == "tool_use":
        return f"  → {block.get('name')} {short(block.get('input'), 150)}"
    if kind == "tool_result":
        mark = "✗" if block.get("is_error") else "✓"
        return f"    {mark} {short(_result_text(block.get('content')), 150)}"
    return f"  [{kind}]"


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            str(b.get("text", "")) if b.get("type") == "text" else f"[{b.get('type')}]"
            for b in content
            if isinstance(b, dict)
        ]
        return " ".join(part for part in parts if part)
    return short(content)


def _some_lines(text: str, indent: str) -> str:
    lines = text.strip().splitlines() or [""]
    shown = lines[:TRANSCRIPT_LINES]
    if len(lines) > TRANSCRIPT_LINES:
        shown.append(f"… ({len(lines) - TRANSCRIPT_LINES} more lines)")
    return f"\n{indent}".join(shown)


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def _print_one_line_each(rows: list[tuple[str, str, str, str]]) -> None:
    """A table whose last column is cut to one line that fits the terminal (100 when piped)."""
    width = shutil.get_terminal_size((100, 24)).columns
    used = sum(max(len(row[column]) for row in rows) + 2 for column in range(3))
    room = max(width - used - 1, 20)
    print_table([(*row[:3], short(row[3], room)) for row in rows], numbers=(0,))
