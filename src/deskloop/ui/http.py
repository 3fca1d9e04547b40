"""Helpers every page's API shares: JSON bodies in, errors out as `{"error": ...}` with a status."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

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


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """A bug: logged with its traceback here, one line to the page."""
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(
        {"error": f"internal error ({type(exc).__name__}: {exc}); see the terminal running "
                  "`deskloop ui`"},
        status_code=500,
    )
