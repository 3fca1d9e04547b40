"""One long-lived connection to one browser, shared by a session's browser tools.

Chrome 144+ asks the user to allow each new debugging connection, so a session attaches
once and keeps it. Playwright's `connect_over_cdp` takes the WebSocket URL straight (no
`/json` routes). Disconnecting leaves the browser and its tabs as they were.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
from dataclasses import dataclass

from playwright.async_api import Browser, Locator, Page, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from deskloop.screen.observation import DEFAULT_BUDGET
from deskloop.screen.tokens import count_tokens
from deskloop.settings import BrowserSettings, Paths
from deskloop.tools.browser.attach import (
    BrowserAttachError,
    DevToolsEndpoint,
    explain_no_browser,
    find_port_files,
    start_own_browser,
    user_data_dirs,
)
from deskloop.tools.browser.snapshot import PageSnapshot, build_page_snapshot, diff_pages

# Chrome shows its "allow remote debugging?" prompt while the connection waits.
CONNECT_TIMEOUT_S = 60.0
# A browser deskloop has just started asks nobody, and answers in a second or two. Once in
# three CI runs a fresh Chromium accepted the WebSocket and then never answered the attach
# (60 s); a second connection is tried then. Never for the user's own browser: each
# connection there is another "allow remote debugging?" prompt.
STARTED_CONNECT_TIMEOUT_S = 20.0
SNAPSHOT_TIMEOUT_MS = 10_000
# After an action, read until two snapshots agree (a page settles in a few frames).
SETTLE_INTERVAL_S = 0.1
SETTLE_LIMIT_S = 2.0


class BrowserGone(BrowserAttachError):
    """The browser closed or the connection dropped; the next call attaches again."""


class UnknownRef(BrowserAttachError):
    """A ref that the latest snapshot does not name (stale or never given)."""


@dataclass
class _PageState:
    latest: PageSnapshot | None = None


async def _connect_over_cdp(
    playwright: Playwright, ws_url: str, timeouts: list[float]
) -> Browser:
    """One connection, tried again with the next timeout when one times out."""
    for timeout_s in timeouts[:-1]:
        try:
            return await playwright.chromium.connect_over_cdp(ws_url, timeout=timeout_s * 1000)
        except PlaywrightTimeoutError:
            continue
    return await playwright.chromium.connect_over_cdp(ws_url, timeout=timeouts[-1] * 1000)


class BrowserConnection:
    """A browser attached over CDP: its tabs, the current one, and each tab's latest snapshot."""

    def __init__(
        self,
        playwright: Playwright,
        browser: Browser,
        endpoint: DevToolsEndpoint,
        *,
        started: subprocess.Popen[bytes] | None = None,
        budget: int = DEFAULT_BUDGET,
    ) -> None:
        self.playwright = playwright
        self.browser = browser
        self.endpoint = endpoint
        # The browser process when route 2 started it (None when attached to the user's).
        self.started = started
        self.budget = budget
        self._current: Page | None = None
        self._pages: dict[Page, _PageState] = {}
        self._numbers = 0
        # Short refs, unique in this connection: a ref from another tab or an earlier page
        # is stale, never another element.
        self._short_refs: dict[tuple[Page, str], str] = {}
        self._issued: set[str] = set()
        self._ref_numbers = itertools.count(1)

    @classmethod
    async def connect(
        cls,
        endpoint: DevToolsEndpoint,
        *,
        started: subprocess.Popen[bytes] | None = None,
        budget: int = DEFAULT_BUDGET,
    ) -> BrowserConnection:
        playwright = await async_playwright().start()
        timeouts = [CONNECT_TIMEOUT_S]
        if started is not None:
            timeouts = [STARTED_CONNECT_TIMEOUT_S, CONNECT_TIMEOUT_S]
        try:
            browser = await _connect_over_cdp(playwright, endpoint.ws_url, timeouts)
        except PlaywrightError as exc:
            await playwright.stop()
            raise BrowserAttachError(
                f"could not connect to {endpoint.browser} at {endpoint.ws_url}: "
                f"{first_line(exc)} (if Chrome asked to allow remote debugging, allow it "
                "and try again)"
            ) from exc
        return cls(playwright, browser, endpoint, started=started, budget=budget)

    @classmethod
    async def attach(
        cls, settings: BrowserSettings, paths: Paths, *, may_start: bool, budget: int
    ) -> BrowserConnection:
        """Route 1, else route 2 when `may_start` (the user consented), else advice."""
        findings = find_port_files(user_data_dirs(settings, paths))
        for finding in findings:
            if finding.endpoint is not None:
                return await cls.connect(finding.endpoint, budget=budget)
        if not may_start:
            raise BrowserAttachError(explain_no_browser(findings, settings))
        endpoint, process = await start_own_browser(settings, paths)
        return await cls.connect(endpoint, started=process, budget=budget)

    @property
    def connected(self) -> bool:
        return self.browser.is_connected()

    def describe(self) -> str:
        how = "started by deskloop" if self.started else "the user's browser"
        return f"{self.endpoint.browser} ({how}) at {self.endpoint.user_data_dir}"

    async def close(self) -> None:
        """Drop the connection; the browser keeps running with its tabs."""
        await self.playwright.stop()

    # Tabs

    def tabs(self) -> list[Page]:
        return [page for context in self.browser.contexts for page in context.pages]

    async def current(self) -> Page:
        """The tab the tools work on: the last one chosen, else the first open, else a new one."""
        if not self.connected:
            raise BrowserGone("the browser closed; the next browser call attaches again")
        return self.current_tab or await self.new_tab()

    async def new_tab(self) -> Page:
        context = self.browser.contexts[0] if self.browser.contexts else None
        if context is None:
            raise BrowserGone("the browser has no window to open a tab in")
        self._current = await context.new_page()
        return self._current

    @property
    def current_tab(self) -> Page | None:
        """The tab the tools work on (the first open one until another is chosen), if any."""
        if self._current is None or self._current.is_closed():
            tabs = self.tabs()
            self._current = tabs[0] if tabs else None
        return self._current

    def switch_to(self, page: Page) -> None:
        self._current = page

    def forget(self, page: Page) -> None:
        self._pages.pop(page, None)
        if self._current is page:
            self._current = None

    # Snapshots and refs

    def latest(self, page: Page) -> PageSnapshot | None:
        state = self._pages.get(page)
        return state.latest if state else None

    def current_refs(self) -> tuple[str, ...]:
        """The refs of the current tab's latest snapshot (empty before one)."""
        page = self._current
        snapshot = self.latest(page) if page is not None else None
        return snapshot.refs if snapshot is not None else ()

    async def snapshot(self, page: Page) -> PageSnapshot:
        """Read the page's aria snapshot now; it becomes the tab's latest."""
        aria = await page.aria_snapshot(mode="ai", timeout=SNAPSHOT_TIMEOUT_MS)
        self._numbers += 1

        def short_ref(playwright_ref: str) -> str:
            key = (page, playwright_ref)
            if key not in self._short_refs:
                self._short_refs[key] = f"e{next(self._ref_numbers)}"
                self._issued.add(self._short_refs[key])
            return self._short_refs[key]

        title = await page.title()
        snapshot = build_page_snapshot(self._numbers, title, page.url, aria, short_ref)
        self._pages.setdefault(page, _PageState()).latest = snapshot
        return snapshot

    async def settled_snapshot(self, page: Page) -> PageSnapshot:
        """Snapshots until two in a row read the same (or the limit passes), the last one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_LIMIT_S
        previous = await self.snapshot(page)
        while loop.time() < deadline:
            await asyncio.sleep(SETTLE_INTERVAL_S)
            latest = await self.snapshot(page)
            if latest.url == previous.url and latest.fields() == previous.fields():
                return latest
            previous = latest
        return previous

    def locate(self, page: Page, ref: str) -> Locator:
        """The element `ref` names in the tab's latest snapshot, or a clear error."""
        state = self._pages.get(page)
        if state is None or state.latest is None:
            raise UnknownRef("no snapshot of this tab yet: call browser_snapshot first")
        ref = ref.strip()
        target = state.latest.targets.get(ref)
        if target is not None:
            return page.get_by_ref(target)
        if ref in self._issued:
            raise UnknownRef(
                f"stale ref: {ref} is not on the page in snapshot {state.latest.number} (the "
                "page changed): call browser_snapshot and use a current ref"
            )
        near = ", ".join(state.latest.refs[:12]) or "none"
        raise UnknownRef(
            f"no ref {ref!r} in snapshot {state.latest.number}; its refs include: {near}"
        )

    async def changes_after(self, page: Page, before: PageSnapshot | None) -> str:
        """After an action: what changed on the page, or the whole page when it is a new one."""
        after = await self.settled_snapshot(page)
        if before is None or before.url != after.url:
            return after.render(self.budget)
        diff = diff_pages(before, after)
        changes = len(diff.added) + len(diff.removed) + len(diff.changed)
        if changes > len(after.lines) // 2:
            return after.render(self.budget)  # most of the page changed: show it whole
        head = after.header()
        return f"{head}\n{diff.render(max(self.budget - count_tokens(head), 0))}"


def first_line(exc: BaseException) -> str:
    """A Playwright error's message without its call log."""
    text = str(exc).strip()
    for marker in ("\nCall log:", "\n=="):
        text = text.split(marker)[0]
    return text.splitlines()[0] if text else type(exc).__name__
