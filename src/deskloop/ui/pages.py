"""The HTML pages: plain files shipped in `static/`, each given the process's CSRF token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from deskloop.ui.security import CSRF_PLACEHOLDER, Access

STATIC = resources.files("deskloop.ui") / "static"
# Path -> the page's file; the chat page also answers /chat/<session id>.
PAGES = {
    "/chat": "chat.html",
    "/chat/{session_id:int}": "chat.html",
    "/history": "history.html",
    "/routines": "routines.html",
    "/settings": "settings.html",
    "/mcp": "mcp.html",
    "/doctor": "doctor.html",
}


def page_routes(access: Access) -> list[BaseRoute]:
    def page(file_name: str) -> Callable[[Request], Awaitable[Response]]:
        html = (STATIC / file_name).read_text(encoding="utf-8").replace(
            CSRF_PLACEHOLDER, access.csrf
        )

        async def show(request: Request) -> Response:
            return HTMLResponse(html)

        return show

    async def home(request: Request) -> Response:
        return RedirectResponse("/chat", status_code=303)

    routes: list[BaseRoute] = [Route("/", home)]
    routes += [Route(path, page(file_name)) for path, file_name in PAGES.items()]
    return routes
