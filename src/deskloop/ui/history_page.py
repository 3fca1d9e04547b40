"""History: recent sessions, full-text search over every message, and one session's transcript."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from deskloop.store import SessionRecord, Store
from deskloop.ui.chat_events import transcript_events
from deskloop.ui.http import BadRequest

LIMIT = 50


def session_json(record: SessionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "title": record.title,
        "endpoint": record.endpoint,
        "model": record.model,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "end_reason": record.end_reason,
    }


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", str(LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= 500:
        raise BadRequest("limit must be a whole number from 1 to 500")
    return int(raw)


async def history(request: Request) -> Response:
    """`?q=words`: the messages holding every word, best first; without it, recent sessions."""
    query = request.query_params.get("q", "").strip()
    with Store.open() as store:
        if not query:
            return JSONResponse(
                {"sessions": [session_json(s) for s in store.sessions(limit=_limit(request))]}
            )
        hits = store.search(query, limit=_limit(request))
        titles = {hit.session_id: store.session(hit.session_id).title for hit in hits}
    return JSONResponse(
        {
            "query": query,
            "hits": [
                {
                    "session_id": hit.session_id,
                    "title": titles[hit.session_id],
                    "role": hit.role,
                    "snippet": hit.snippet,
                    "created_at": hit.created_at,
                }
                for hit in hits
            ],
        }
    )


def stored_session(session_id: int, messages_before: int | None = None) -> dict[str, Any]:
    """A session's record and its messages as chat events (the first `messages_before` only)."""
    with Store.open() as store:
        record = store.session(session_id)
        messages = store.messages(session_id)
    if messages_before is not None:
        messages = messages[:messages_before]
    return {"session": session_json(record), "transcript": transcript_events(messages)}


async def one_session(request: Request) -> Response:
    return JSONResponse(stored_session(request.path_params["session_id"]))


def history_routes() -> list[BaseRoute]:
    return [
        Route("/api/history", history, methods=["GET"]),
        Route("/api/sessions/{session_id:int}", one_session, methods=["GET"]),
    ]
