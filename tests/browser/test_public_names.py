"""The browser family's public surface: what the registry, the agent and the doctor use."""

from __future__ import annotations

import deskloop.tools.browser as browser
from deskloop.errors import DeskloopError


def test_public_names() -> None:
    assert set(browser.__all__) == {
        "BROWSER_FAMILY", "BrowserAttachError", "BrowserConnection", "DevToolsEndpoint",
        "PageSnapshot", "PortFileFinding", "UserDataDir", "browser_checks",
        "browser_connection", "browser_tools", "build_page_snapshot", "diff_pages",
        "find_port_files", "grounded_values", "own_profile", "standard_user_data_dirs",
        "user_data_dirs",
    }
    assert all(hasattr(browser, name) for name in browser.__all__)
    assert issubclass(browser.BrowserAttachError, DeskloopError)
    assert browser.BROWSER_FAMILY.name == "browser"
