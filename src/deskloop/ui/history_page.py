"""History: recent sessions, full-text search over every message, and one session's transcript."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from deskloop.agent.ending import session_state
from deskloop.agent.history import search_sessions, session_title
from deskloop.store import SessionRecord, Store
from deskloop.ui.chat_events import transcript_events
from deskloop.ui.http import BadRequest

LIMIT = 50


def session_json(record: SessionRecord, store: Store) -> dict[str, Any]:
    state = session_state(record)
    return {
        "id": record.id,
        "title": session_title(store, record),
        "endpoint": record.endpoint,
        "model": record.model,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "end_reason": record.end_reason,
        "state": state.state,
        "state_words": state.words,
    }


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", str(LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= 500:
        raise BadRequest("limit must be a whole number from 1 to 500")
    return int(raw)


async def history(request: Request) -> Response:
    """`?q=words`: one row per session whose messages hold every word, best first, with the
    number of matching messages and the best excerpt; without it, recent sessions."""
    query = request.query_params.get("q", "").strip()
    with Store.open() as store:
        if not query:
            sessions = store.sessions(limit=_limit(request))
            return JSONResponse({"sessions": [session_json(s, store) for s in sessions]})
        matches = search_sessions(store, query, _limit(request))
    return JSONResponse(
        {
            "query": query,
            "hits": [
                {
                    "session_id": match.session_id,
                    "title": match.title,
                    "who": match.who,
                    "snippet": match.excerpt,
                    "hits": match.hits,
                    "created_at": match.created_at,
                }
                for match in matches
            ],
        }
    )


def stored_session(session_id: int, messages_before: int | None = None) -> dict[str, Any]:
    """A session's record and its messages as chat events (the first `messages_before` only)."""
    with Store.open() as store:
        record = store.session(session_id)
        messages = store.messages(session_id)
        session = session_json(record, store)
    if messages_before is not None:
        messages = messages[:messages_before]
    return {"session": session, "transcript": transcript_events(messages)}


async def one_session(request: Request) -> Response:
    return JSONResponse(stored_session(request.path_params["session_id"]))


def history_routes() -> list[BaseRoute]:
    return [
        Route("/api/history", history, methods=["GET"]),
        Route("/api/sessions/{session_id:int}", one_session, methods=["GET"]),
    ]
