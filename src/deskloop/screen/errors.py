"""Errors of the screen layer; each message tells the model or the user what to do next."""

from __future__ import annotations

from deskloop.errors import DeskloopError


class ScreenError(DeskloopError):
    """Something about reading or driving the screen failed; the message says what to do."""


class ScreenUnavailableError(ScreenError):
    """No display, no session bus or no accessibility bus: nothing can be seen."""


class AppNotFoundError(ScreenError):
    """The requested application is not in the accessibility tree."""


class StaleElementError(ScreenError):
    """An element id from an older snapshot, or one whose element changed: observe again."""


class ElementNotFoundError(ScreenError):
    """An element id that no snapshot of this session ever had."""


class DegradedTreeError(ScreenError):
    """The application gives no usable accessibility tree; the reason says why."""


class ActionFailedError(ScreenError):
    """The application refused or could not perform an action."""
