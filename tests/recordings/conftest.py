"""The recording tests run on the screen tests' desktop: Xvfb, a session bus and GTK3 apps."""

from __future__ import annotations

from tests.screen.conftest import desktop, desktop_env, session

__all__ = ["desktop", "desktop_env", "session"]
