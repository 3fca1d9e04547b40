"""Which event source hears this machine's input and accessibility events, for recording.

One module per platform, imported only when a recording starts (Linux never loads pyobjc);
the event sources import `recording_events.py`, never this module.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

from deskloop.screen.errors import ScreenUnavailableError
from deskloop.screen.recording_events import EventSource

if TYPE_CHECKING:  # for mypy to check each source against EventSource
    from deskloop.screen.backends.atspi.events import AtspiEventSource
    from deskloop.screen.backends.macos.events import MacEventSource

# A `sys.platform` prefix -> the module under deskloop.screen.backends with its event source.
EVENT_SOURCES = {
    "linux": "atspi.events",
    "darwin": "macos.events",
}


def event_source_module(platform: str) -> str:
    for prefix, module in EVENT_SOURCES.items():
        if platform.startswith(prefix):
            return f"deskloop.screen.backends.{module}"
    raise ScreenUnavailableError(
        f"recording is not available on {platform} yet: deskloop records on Linux (AT-SPI "
        "and X) and macOS (AX)"
    )


async def open_event_source(app: str | None = None) -> EventSource:
    """This platform's event source, already listening; `app` narrows it to one app.

    Raises `ScreenUnavailableError` saying what to fix (no accessibility bus, no X display
    or RECORD extension, a missing macOS permission).
    """
    module = importlib.import_module(event_source_module(sys.platform))
    if sys.platform == "darwin":
        mac: MacEventSource = module.macos_event_source(app)
        await mac.start()
        return mac
    linux: type[AtspiEventSource] = module.AtspiEventSource
    return await linux.connect(app)
