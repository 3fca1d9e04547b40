"""What the agent sees of the screen: neutral element trees, observations, diffs, actions.

The agent's screen tools wrap `ScreenSession` (actions.py); backends live under
`backends/` (AT-SPI on Linux, AX on macOS), picked in `platforms.py`.
"""

from deskloop.screen.actions import ActionResult, ScreenSession
from deskloop.screen.backend import AppInfo, ScreenBackend, Target
from deskloop.screen.diff import SnapshotDiff, diff_snapshots
from deskloop.screen.errors import (
    ActionFailedError,
    AppNotFoundError,
    DegradedTreeError,
    ElementNotFoundError,
    ScreenError,
    ScreenUnavailableError,
    StaleElementError,
)
from deskloop.screen.observation import (
    FORMAT_HELP,
    Observation,
    find_elements,
    render_observation,
)
from deskloop.screen.platforms import default_backend, no_desktop_reason
from deskloop.screen.screenshot import Screenshot
from deskloop.screen.tree import Box, Element, Snapshot

__all__ = [
    "FORMAT_HELP",
    "ActionFailedError",
    "ActionResult",
    "AppInfo",
    "AppNotFoundError",
    "Box",
    "DegradedTreeError",
    "Element",
    "ElementNotFoundError",
    "Observation",
    "ScreenBackend",
    "ScreenError",
    "ScreenSession",
    "ScreenUnavailableError",
    "Screenshot",
    "Snapshot",
    "SnapshotDiff",
    "StaleElementError",
    "Target",
    "default_backend",
    "diff_snapshots",
    "find_elements",
    "no_desktop_reason",
    "render_observation",
]
