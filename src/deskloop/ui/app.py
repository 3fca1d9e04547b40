"""The web UI as one Starlette app: pages, their JSON APIs, static files, and the access rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from deskloop.errors import DeskloopError
from deskloop.ui.chat_page import chat_routes
from deskloop.ui.chat_sessions import ChatSessions
from deskloop.ui.doctor_page import doctor_routes
from deskloop.ui.history_page import history_routes
from deskloop.ui.http import UnexpectedErrors, deskloop_error
from deskloop.ui.mcp_page import mcp_routes
from deskloop.ui.pages import STATIC, page_routes
from deskloop.ui.recordings_page import recordings_routes
from deskloop.ui.routines_page import routines_routes
from deskloop.ui.security import Access, AccessMiddleware
from deskloop.ui.settings_page import settings_routes


def create_app(access: Access, chats: ChatSessions | None = None) -> Starlette:
    """The UI; `chats` holds its live sessions (a test may pass one with another opener)."""
    sessions = chats if chats is not None else ChatSessions()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await sessions.close_all()

    routes: list[BaseRoute] = [
        *page_routes(access),
        *settings_routes(),
        *mcp_routes(),
        *doctor_routes(),
        *history_routes(),
        *chat_routes(),
        *routines_routes(),
        *recordings_routes(),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(AccessMiddleware, access=access),
            Middleware(UnexpectedErrors),
        ],
        exception_handlers={DeskloopError: deskloop_error},
        lifespan=lifespan,
    )
    app.state.chats = sessions
    app.state.access = access
    return app
