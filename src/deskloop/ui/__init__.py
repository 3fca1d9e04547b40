"""The local web UI: chat, settings, MCP servers, doctor, history and routines in a browser."""

from deskloop.ui.app import create_app
from deskloop.ui.chat_sessions import ChatSessions, LiveSession
from deskloop.ui.security import Access, UiRefused

__all__ = ["Access", "ChatSessions", "LiveSession", "UiRefused", "create_app"]
