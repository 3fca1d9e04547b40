"""`deskloop history`: past sessions, one transcript, or a full-text search; reads only the store."""

from __future__ import annotations

import argparse
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deskloop.agent.ending import session_state
from deskloop.agent.loop import INTERRUPTED_TURN, STARTING_SCREEN_HEADER
from deskloop.agent.text import short
from deskloop.command_line import print_table
from deskloop.store import MessageRecord, SessionRecord, Store, searchable_text

# Lines of one text block a transcript shows before it says how many more there are.
TRANSCRIPT_LINES = 8
# Characters a search excerpt shows before and after the word it matched.
EXCERPT_BEFORE = 50
EXCERPT_AFTER = 110


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
        rows = [("ID", "STARTED", "STATE", "TITLE")]
        for record in records:
            title = session_title(store, record) or "(no messages)"
            rows.append(
                (str(record.id), _when(record.started_at), session_state(record).words, title)
            )
        _print_one_line_each(rows)
    return 0


def session_title(store: Store, record: SessionRecord) -> str:
    """The session's title, else the first thing the person wrote (the CLI and the UI alike)."""
    return record.title or first_words(store.messages(record.id))


def first_words(messages: list[MessageRecord]) -> str:
    """A title for a session stored without one: the first thing the person wrote."""
    for message in messages:
        for block in message.content:
            text = str(block.get("text", "")).strip()
            if text and speaker(message.role, block, message.content) == "you":
                return text
    return ""


def speaker(
    role: str,
    block: dict[str, Any],
    blocks: list[dict[str, Any]],
    tools: Mapping[str, str] | None = None,
) -> str:
    """Who a block is from: "you", "agent", "screen", "deskloop" (its own notes to the model),
    "agent → TOOL" (a call) or "TOOL result" (`tools` maps call ids to tool names)."""
    kind = block.get("type")
    if kind == "tool_use":
        return f"agent → {block.get('name')}"
    if kind == "tool_result":
        return f"{(tools or {}).get(str(block.get('tool_use_id')), 'tool')} result"
    text = str(block.get("text", ""))
    if role == "assistant":
        return "deskloop" if text == INTERRUPTED_TURN else "agent"
    if STARTING_SCREEN_HEADER in text:
        return "screen"
    if any(b.get("type") == "tool_result" for b in blocks) or block is not blocks[0]:
        return "deskloop"  # the task's step, sent with tool results
    return "you"


def tool_names(messages: list[MessageRecord]) -> dict[str, str]:
    """Each tool call's id and its tool's name, for naming results."""
    return {
        str(block.get("id")): str(block.get("name"))
        for message in messages
        for block in message.content
        if block.get("type") == "tool_use"
    }


@dataclass(frozen=True)
class SessionMatch:
    """One session a search found: its best excerpt, who said it, and how many messages match."""

    session_id: int
    title: str
    who: str
    excerpt: str
    hits: int
    created_at: float


def search_sessions(store: Store, text: str, limit: int) -> list[SessionMatch]:
    """One row per session, best first, with the best message's matching block as excerpt."""
    matches = []
    for hit in store.search(text, limit=limit):
        messages = store.messages(hit.session_id)
        message = next((m for m in messages if m.id == hit.message_id), None)
        who: str = "you" if hit.role == "user" else "agent"
        excerpt = hit.snippet
        if message is not None:
            who, excerpt = _matching_block(message, tool_names(messages), text) or (who, excerpt)
        title = session_title(store, store.session(hit.session_id))
        matches.append(SessionMatch(hit.session_id, title, who, excerpt, hit.hits, hit.created_at))
    return matches


def _matching_block(
    message: MessageRecord, tools: Mapping[str, str], query: str
) -> tuple[str, str] | None:
    """Who said the first block holding a query word, and its words around the match."""
    words = [re.escape(w.rstrip("*")) for w in query.split() if w.rstrip("*")]
    if not words:
        return None
    pattern = re.compile(r"\b(" + "|".join(words) + r")\w*", re.IGNORECASE)
    for block in message.content:
        said = searchable_text([block])
        found = pattern.search(said)
        if found is None:
            continue
        start = max(found.start() - EXCERPT_BEFORE, 0)
        end = found.end() + EXCERPT_AFTER
        marked = pattern.sub(lambda word: f"[{word.group(0)}]", said[start:end])
        excerpt = ("…" if start else "") + marked + ("…" if end < len(said) else "")
        who = speaker(message.role, block, message.content, tools)
        return who, " ".join(excerpt.split())
    return None


def _search(store: Store, text: str, limit: int) -> int:
    matches = search_sessions(store, text, limit)
    if not matches:
        print(f"no sessions match {text!r}")
        return 0
    rows = [("ID", "HITS", "WHO", "BEST MATCH")]
    for match in matches:
        rows.append((str(match.session_id), str(match.hits), match.who, match.excerpt))
    _print_one_line_each(rows)
    return 0


def _transcript(store: Store, record: SessionRecord) -> None:
    messages = store.messages(record.id)
    print(f"session {record.id}: {short(session_title(store, record), 200)}")
    state = session_state(record).words
    print(f"  {record.model} at {record.endpoint}; started {_when(record.started_at)}; {state}")
    tools = tool_names(messages)
    for message in messages:
        for block in message.content:
            print(transcript_line(message.role, block, message.content, tools))


def transcript_line(
    role: str,
    block: dict[str, Any],
    blocks: list[dict[str, Any]] | None = None,
    tools: Mapping[str, str] | None = None,
    *,
    one_line: bool = False,
) -> str:
    """One content block as a transcript shows it: who said it, or the call and its result."""
    kind = block.get("type")
    if kind == "text":
        who = speaker(role, block, blocks if blocks is not None else [block])
        text = str(block.get("text", ""))
        said = short(text, 150) if one_line else _some_lines(text, "      ")
        return f"{who}> {said}"
    if kind == "tool_use":
        return f"  → {block.get('name')} {short(block.get('input'), 150)}"
    if kind == "tool_result":
        mark = "✗" if block.get("is_error") else "✓"
        name = (tools or {}).get(str(block.get("tool_use_id")))
        said = short(_result_text(block.get("content")), 150)
        return f"    {mark} {name}: {said}" if name else f"    {mark} {said}"
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
