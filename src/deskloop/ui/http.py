"""Helpers every page's API shares: JSON bodies in, errors out as `{"error": ...}` with a status."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deskloop.errors import DeskloopError
from deskloop.store import UnknownSession

log = logging.getLogger("deskloop.ui")


class BadRequest(DeskloopError):
    """A request whose body or fields are wrong; the message says which."""

    status_code = 400


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object; a form post or anything else is a clear 400."""
    try:
        body = json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the request body must be a JSON object ({exc})") from exc
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def text_field(body: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be text")
    if required and not value.strip():
        raise BadRequest(f"{name} is required")
    return value.strip()


async def deskloop_error(request: Request, exc: Exception) -> Response:
    """Our errors carry words for the user and, where it matters, their status."""
    status = int(getattr(exc, "status_code", 404 if isinstance(exc, UnknownSession) else 400))
    return JSONResponse({"error": str(exc)}, status_code=status)


class UnexpectedErrors:
    """A bug answers 500 with one line for the page and one for the terminal, never a traceback.

    Starlette's own handler for `Exception` re-raises after answering, and the server then
    prints the traceback; this catches it first. The traceback is logged at debug level.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            said = f"{type(exc).__name__}: {exc}"
            log.error("deskloop ui: internal error on %s %s (%s)", scope["method"], scope["path"], said)
            log.debug("traceback", exc_info=True)
            if not started:
                response = JSONResponse(
                    {"error": f"internal error ({said}); see the terminal running `deskloop ui`"},
                    status_code=500,
                )
                await response(scope, receive, send)
