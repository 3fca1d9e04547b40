"""The replay tests run on the screen tests' desktop: Xvfb, a session bus and GTK3 apps."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from deskloop.screen.virtual_desktop import VirtualDesktop
from tests.replay.atspi_reader import IndependentReader
from tests.screen.conftest import desktop, desktop_env, session

__all__ = ["desktop", "desktop_env", "session"]


@pytest.fixture
async def reader(desktop_env: VirtualDesktop) -> AsyncIterator[IndependentReader]:
    independent = await IndependentReader.connect(desktop_env.bus_address)
    try:
        yield independent
    finally:
        independent.close()
