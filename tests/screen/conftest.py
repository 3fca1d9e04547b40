"""Fixtures for the screen tests: one real test desktop per test session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from deskloop.screen.actions import ScreenSession
from deskloop.screen.backends.atspi.backend import AtspiBackend
from deskloop.screen.virtual_desktop import VirtualDesktop


@pytest.fixture(scope="session")
def desktop() -> Iterator[VirtualDesktop]:
    """Xvfb, a private session bus and gtk3-widget-factory, gtk3-demo and mousepad."""
    running = VirtualDesktop.start()
    try:
        running.wait_for_trees()
        yield running
    finally:
        running.stop()


@pytest.fixture
def desktop_env(desktop: VirtualDesktop, monkeypatch: pytest.MonkeyPatch) -> VirtualDesktop:
    """Point this test's process at the test desktop (DISPLAY and the session bus)."""
    for name in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DISPLAY", desktop.display)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", desktop.bus_address)
    return desktop


@pytest.fixture
async def session(desktop_env: VirtualDesktop) -> AsyncIterator[ScreenSession]:
    backend = await AtspiBackend.connect()
    try:
        yield ScreenSession(backend)
    finally:
        await backend.close()
