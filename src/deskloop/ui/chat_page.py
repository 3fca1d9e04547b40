"""Chat: start or resume sessions, their events as server-sent events, answers, approvals, stop."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from deskloop.ui.chat_sessions import ChatSessions, LiveSession
from deskloop.ui.history_page import stored_session
from deskloop.ui.http import BadRequest, json_body, text_field

# A comment line this often keeps proxies and the browser from closing a quiet stream.
KEEPALIVE_S = 15.0


def _hub(request: Request) -> ChatSessions:
    hub: ChatSessions = request.app.state.chats
    return hub


def _live_json(live: LiveSession) -> dict[str, Any]:
    return {"live": True, **live.summary()}


async def list_live(request: Request) -> Response:
    return JSONResponse({"sessions": [live.summary() for live in _hub(request).live.values()]})


async def start(request: Request) -> Response:
    text = text_field(await json_body(request), "text", required=True)
    live = await _hub(request).start(text)
    return JSONResponse(_live_json(live), status_code=201)


async def show(request: Request) -> Response:
    """The stored part of a session, and whether it is live (its events then come by SSE)."""
    session_id: int = request.path_params["session_id"]
    live = _hub(request).live.get(session_id)
    if live is None:
        return JSONResponse({"live": False, "running": False, **stored_session(session_id)})
    return JSONResponse(
        {**_live_json(live), **stored_session(session_id, live.messages_before)}
    )


async def events(request: Request) -> Response:
    """The session's events from `Last-Event-ID` (a reconnect) or `?after=N`, then live."""
    live = _hub(request).get(request.path_params["session_id"])
    raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    if not raw.isdigit():
        raise BadRequest("after must be an event number")

    async def stream() -> AsyncIterator[str]:
        async for event in live.events_after(int(raw), KEEPALIVE_S):
            if event is None:
                yield ": keepalive\n\n"
            else:
                yield f"id: {event['seq']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"x-accel-buffering": "no"}
    )


async def send(request: Request) -> Response:
    """A message to a session, reopening it first when it is not live (resume)."""
    session_id: int = request.path_params["session_id"]
    text = text_field(await json_body(request), "text", required=True)
    hub = _hub(request)
    live = await hub.resume(session_id)
    hub.send(live.session_id, text)
    return JSONResponse(_live_json(live))


async def stop(request: Request) -> Response:
    live = _hub(request).get(request.path_params["session_id"])
    return JSONResponse({"stopped": live.stop()})


async def answer(request: Request) -> Response:
    live = _hub(request).get(request.path_params["session_id"])
    body = await json_body(request)
    live.answer(request.path_params["approval_id"], text_field(body, "answer", required=True))
    return JSONResponse({"answered": True})


async def close(request: Request) -> Response:
    _hub(request).close(request.path_params["session_id"])
    return JSONResponse({"closing": True})


def chat_routes() -> list[BaseRoute]:
    base = "/api/chat/{session_id:int}"
    return [
        Route("/api/chat", list_live, methods=["GET"]),
        Route("/api/chat", start, methods=["POST"]),
        Route(base, show, methods=["GET"]),
        Route(f"{base}/events", events, methods=["GET"]),
        Route(f"{base}/messages", send, methods=["POST"]),
        Route(f"{base}/stop", stop, methods=["POST"]),
        Route(f"{base}/approvals/{{approval_id}}", answer, methods=["POST"]),
        Route(f"{base}/close", close, methods=["POST"]),
    ]
