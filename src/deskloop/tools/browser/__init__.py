"""The browser family: the user's own Chrome, Chromium or Brave, attached over CDP.

attach.py finds the browser (DevToolsActivePort, or one deskloop starts with consent),
connection.py keeps one connection per browser, snapshot.py writes pages as compact lines
with refs, tools.py offers them to the model.
"""

from deskloop.tools.browser.attach import (
    BrowserAttachError,
    DevToolsEndpoint,
    PortFileFinding,
    UserDataDir,
    find_port_files,
    own_profile,
    standard_user_data_dirs,
    user_data_dirs,
)
from deskloop.tools.browser.connection import BrowserConnection
from deskloop.tools.browser.doctor import browser_checks
from deskloop.tools.browser.snapshot import PageSnapshot, build_page_snapshot, diff_pages
from deskloop.tools.browser.tools import (
    BROWSER_FAMILY,
    browser_connection,
    browser_tools,
    grounded_values,
)

__all__ = [
    "BROWSER_FAMILY",
    "BrowserAttachError",
    "BrowserConnection",
    "DevToolsEndpoint",
    "PageSnapshot",
    "PortFileFinding",
    "UserDataDir",
    "browser_checks",
    "browser_connection",
    "browser_tools",
    "build_page_snapshot",
    "diff_pages",
    "find_port_files",
    "grounded_values",
    "own_profile",
    "standard_user_data_dirs",
    "user_data_dirs",
]
