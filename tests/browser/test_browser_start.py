"""Route 2: with the user's consent deskloop starts the browser on its own profile.

One Chromium at a time: started by browser_start, reattached by the next session,
stopped (its DevToolsActivePort left behind, stale), then started again by consent
given as a setting, on the same profile, where what the first run stored is still there.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from deskloop.settings import Settings, load_settings, paths
from deskloop.store import Store
from deskloop.tools import PermissionPolicy, ToolContext, ToolFailed
from deskloop.tools.browser import BrowserConnection, browser_tools, own_profile
from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LocalSite,
    chromium_dying_with_the_tests,
    stop,
)

pytestmark = pytest.mark.slow

REMEMBER = """<!doctype html><title>Remember</title>
<p id=seen></p>
<script>
const seen = localStorage.getItem('login');
document.getElementById('seen').textContent = seen ? 'Welcome back ' + seen : 'Nobody yet';
localStorage.setItem('login', 'ada');
</script>"""

ContextMaker = Callable[..., ToolContext]


@pytest.fixture(scope="module", autouse=True)
def pages(site: LocalSite) -> None:
    site.pages["remember"] = REMEMBER


def browser_settings(*, start_own: bool, folder: Path) -> Settings:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (scripts/debian-packages.txt)")
    settings = load_settings()
    settings.browser.executable = chromium_dying_with_the_tests(folder)
    settings.browser.arguments = list(CHROMIUM_ARGS)
    settings.browser.start_own = start_own
    return settings


@pytest.fixture
async def started() -> AsyncIterator[list[subprocess.Popen[bytes]]]:
    """Browsers the test's sessions started; all stopped at the end."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        yield processes
    finally:
        for process in processes:
            stop(process)


async def run(context: ToolContext, name: str, **given: object) -> str:
    tool = {t.name: t for t in browser_tools(context)}[name]
    output = await tool.run(dict(given), context)
    assert isinstance(output, str)
    return output


def session(settings: Settings, store: Store, **fields: object) -> ToolContext:
    return ToolContext(settings=settings, paths=paths(), store=store, **fields)  # type: ignore[arg-type]


async def test_consent_starts_the_browser_and_its_profile_persists(
    site: LocalSite, started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    asking = browser_settings(start_own=False, folder=tmp_path)
    with Store.open(Path(":memory:")) as store:
        # No browser to attach: the tools say what the user can do.
        first = session(asking, store)
        with pytest.raises(ToolFailed, match="chrome://inspect/#remote-debugging") as told:
            await run(first, "browser_snapshot")
        assert "browser_start" in str(told.value)

        # An unattended run is never asked, so browser_start never runs there.
        [start_tool] = [t for t in browser_tools(first) if t.name == "browser_start"]
        policy = PermissionPolicy.from_settings(asking.agent)
        unattended = session(asking, store, unattended=True)
        verdict = await policy.check(start_tool, {}, unattended)
        assert not verdict.allowed and "nobody is here to ask" in verdict.reason

        # Approved (the tool itself is what the policy asks about): it starts the browser.
        said = await run(first, "browser_start")
        connection = first.browser
        assert isinstance(connection, BrowserConnection) and connection.started is not None
        started.append(connection.started)
        assert "started by deskloop" in said
        profile = own_profile(paths())
        assert (profile / "DevToolsActivePort").exists()
        page = await run(first, "browser_navigate", url=site.url("remember"))
        assert '"Nobody yet"' in page
        await first.aclose()

        # The next session attaches to the same running browser; nothing new is started.
        second = session(asking, store)
        page = await run(second, "browser_navigate", url=site.url("remember"))
        assert '"Welcome back ada"' in page
        again = second.browser
        assert isinstance(again, BrowserConnection) and again.started is None
        assert again.endpoint.user_data_dir == profile
        await second.aclose()

        # The browser quits; its DevToolsActivePort stays behind and is seen as stale.
        stop(started.pop())
        third = session(asking, store)
        with pytest.raises(ToolFailed, match="nothing listens") as stale:
            await run(third, "browser_snapshot")
        assert "browser_start" in str(stale.value)

        # Consent given as a setting: the next call starts it again, on the same profile.
        consenting = session(browser_settings(start_own=True, folder=tmp_path), store)
        page = await run(consenting, "browser_navigate", url=site.url("remember"))
        connection = consenting.browser
        assert isinstance(connection, BrowserConnection) and connection.started is not None
        started.append(connection.started)
        assert '"Welcome back ada"' in page
        await consenting.aclose()
