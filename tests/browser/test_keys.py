"""browser_press takes keys as the screen tools do and hands Playwright its own names."""

from __future__ import annotations

import pytest

from deskloop.tools import BadToolArguments
from deskloop.tools.browser.tools import playwright_keys


def test_keys_are_written_as_the_screen_tools_take_them() -> None:
    assert playwright_keys("ctrl+a Delete") == ["Control+a", "Delete"]
    assert playwright_keys("shift+Tab enter esc f5 pagedown") == [
        "Shift+Tab", "Enter", "Escape", "F5", "PageDown",
    ]
    with pytest.raises(BadToolArguments, match="keys is empty"):
        playwright_keys("   ")
