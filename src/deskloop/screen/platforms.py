"""Which backend reads this machine's screen: one backend module per platform, chosen by name.

As mlx-lm picks a model module by its type, the chosen module is imported only when a
backend opens, so Linux never loads pyobjc; backends import `backend.py`, never this module.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import TYPE_CHECKING

from deskloop.screen.backend import ScreenBackend
from deskloop.screen.errors import ScreenUnavailableError

if TYPE_CHECKING:  # for mypy to check each backend against ScreenBackend
    from deskloop.screen.backends.atspi.backend import AtspiBackend
    from deskloop.screen.backends.macos.backend import MacBackend

Opener = Callable[[ModuleType], Awaitable[ScreenBackend]]


async def _open_atspi(module: ModuleType) -> ScreenBackend:
    backend_class: type[AtspiBackend] = module.AtspiBackend
    return await backend_class.connect()


async def _open_macos(module: ModuleType) -> ScreenBackend:
    backend_class: type[MacBackend] = module.MacBackend
    return backend_class.create()


# A `sys.platform` prefix -> the package under deskloop.screen.backends whose `backend`
# module reads the screen there, and how to open it.
BACKENDS: dict[str, tuple[str, Opener]] = {
    "linux": ("atspi", _open_atspi),
    "darwin": ("macos", _open_macos),
}


def backend_for(platform: str) -> tuple[str, Opener]:
    """The backend package name for `platform` and its opener; raises where there is none."""
    for prefix, choice in BACKENDS.items():
        if platform.startswith(prefix):
            return choice
    raise ScreenUnavailableError(
        f"no screen backend for {platform} yet: deskloop reads the screen on Linux (AT-SPI) "
        "and macOS (AX); Windows UI Automation is planned"
    )


async def default_backend() -> ScreenBackend:
    """The backend for this platform, connected."""
    name, open_backend = backend_for(sys.platform)
    return await open_backend(importlib.import_module(f"deskloop.screen.backends.{name}.backend"))


def no_desktop_reason() -> str | None:
    """Why no desktop can be reached from this process (None: one may be), without
    connecting: a session over SSH or on a server leaves the screen tools out."""
    if sys.platform == "darwin":
        return None
    if os.environ.get("AT_SPI_BUS_ADDRESS") or os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return None
    display = os.environ.get("DISPLAY")
    if display:
        from deskloop.screen.backends.atspi.connection import root_window_bus_address

        if root_window_bus_address() is not None:
            return None
        return f"DISPLAY is {display}, but no accessibility bus runs there"
    return "neither DISPLAY nor DBUS_SESSION_BUS_ADDRESS is set"
