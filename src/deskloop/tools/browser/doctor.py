"""`deskloop doctor`'s browser line: which attach route works here, and how to get one."""

from __future__ import annotations

from deskloop.screen.doctor import Check
from deskloop.settings import BrowserSettings, Paths, load_settings, paths
from deskloop.tools.browser.attach import (
    INSPECT_PAGE,
    browser_executable,
    find_port_files,
    own_profile,
    user_data_dirs,
)

ROUTE_1_FIX = (
    f"in Chrome 144 or later open {INSPECT_PAGE} and allow remote debugging (for a browser "
    "in another user-data directory: `deskloop config set browser.user_data_dir DIR`)"
)


def route_check(settings: BrowserSettings, where: Paths) -> Check:
    """Route 1 (a running browser's DevToolsActivePort), else route 2, else what to do.

    It only looks: connecting would make Chrome ask the user to allow it.
    """
    findings = find_port_files(user_data_dirs(settings, where))
    live = [f for f in findings if f.endpoint is not None]
    if live:
        return Check(
            "browser", "ok",
            f"attaches to {live[0].detail}, where remote debugging is on (DevToolsActivePort)",
        )
    stale = "; ".join(f.detail for f in findings)
    seen = f" ({stale})" if stale else ""
    executable = browser_executable(settings)
    if executable is None:
        return Check(
            "browser", "warn",
            f"no running browser allows remote debugging{seen}, and no Chrome, Chromium or "
            "Brave is installed for deskloop to start",
            f"install Chrome or Chromium, then: {ROUTE_1_FIX}",
        )
    consent = (
        "without asking (browser.start_own is true)"
        if settings.start_own
        else "when the user approves browser_start (or sets browser.start_own true)"
    )
    return Check(
        "browser", "warn",
        f"no running browser allows remote debugging{seen}; deskloop can start {executable} "
        f"on {own_profile(where)} {consent}",
        f"to use your own browser and its logins: {ROUTE_1_FIX}",
    )


def browser_checks() -> list[Check]:
    """The doctor's browser checks with the user's settings."""
    return [route_check(load_settings().browser, paths())]
