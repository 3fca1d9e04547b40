"""`deskloop history`: past sessions, one transcript, or a full-text search; reads only the store."""

from __future__ import annotations

import argparse
import time

from deskloop.agent.text import short
from deskloop.store import Store


def history_command(args: argparse.Namespace) -> int:
    """List sessions, search their messages, or print one session's transcript."""
    with Store.open() as store:
        if args.search:
            for hit in store.search(args.search, limit=args.limit):
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(hit.created_at))
                print(f"{hit.session_id:>5}  {when}  {hit.role:<9}  {hit.snippet}")
            return 0
        if args.session is not None:
            record = store.session(args.session)
            print(f"session {record.id}: {record.title} ({record.model} at {record.endpoint})")
            for message in store.messages(record.id):
                for block in message.content:
                    print(f"{message.role:>9}: {_describe_block(block)}")
            return 0
        for record in store.sessions(limit=args.limit):
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.started_at))
            state = record.end_reason or "open"
            print(f"{record.id:>5}  {when}  {state:<18}  {short(record.title, 70)}")
    return 0


def _describe_block(block: dict[str, object]) -> str:
    kind = block.get("type")
    if kind == "text":
        return short(block.get("text", ""), 200)
    if kind == "tool_use":
        return f"→ {block.get('name')} {short(block.get('input'), 150)}"
    if kind == "tool_result":
        mark = "✗" if block.get("is_error") else "✓"
        return f"{mark} {short(block.get('content'), 150)}"
    return f"[{kind}]"
