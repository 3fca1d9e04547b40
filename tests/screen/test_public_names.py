"""The screen package's public surface is exactly what the agent's tools are meant to use."""

from __future__ import annotations

import deskloop.screen as screen
from deskloop.errors import DeskloopError


def test_public_names() -> None:
    assert set(screen.__all__) == {
        "FORMAT_HELP", "ActionFailedError", "ActionResult", "AppInfo", "AppNotFoundError", "Box",
        "DegradedTreeError", "Element", "ElementNotFoundError", "Observation", "ScreenBackend",
        "ScreenError", "ScreenSession", "ScreenUnavailableError", "Screenshot", "Snapshot",
        "SnapshotDiff", "StaleElementError", "Target", "default_backend", "diff_snapshots",
        "find_elements", "no_desktop_reason", "render_observation",
    }
    assert all(hasattr(screen, name) for name in screen.__all__)


def test_screen_errors_are_user_facing() -> None:
    for name in ("ActionFailedError", "AppNotFoundError", "DegradedTreeError",
                 "ElementNotFoundError", "ScreenUnavailableError", "StaleElementError"):
        assert issubclass(getattr(screen, name), DeskloopError)
