"""Real Chromium on the virtual desktop: a local page's elements read and driven by id.

Chromium is started the way the agent starts apps (`open_app`): the backend has already
turned accessibility on, and the launch adds --force-renderer-accessibility.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from deskloop.screen.actions import ScreenSession
from deskloop.screen.backends.atspi.backend import AtspiBackend
from deskloop.screen.observation import visible_elements
from deskloop.screen.tree import Element, Snapshot
from deskloop.screen.virtual_desktop import AppSpec, VirtualDesktop

pytestmark = [pytest.mark.desktop, pytest.mark.slow]

if shutil.which("chromium") is None:
    pytest.skip("chromium is not installed (scripts/debian-packages.txt)", allow_module_level=True)

PAGE = Path(__file__).parent / "apps" / "order_form.html"
PAGE_TITLE = "deskloop order form"
# Flags for a quiet, self-contained browser: no sandbox (tests run as root), no first-run
# dialogs, no GPU under Xvfb, no network traffic of its own.
CHROMIUM_FLAGS = (
    "--no-sandbox --no-first-run --disable-gpu --disable-background-networking "
    "--disable-component-update --disable-sync --window-size=1000,700"
)


@pytest.fixture(scope="module")
def browser_desktop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualDesktop]:
    """An empty virtual desktop with Chromium opened on the page through `open_app`."""
    desktop = VirtualDesktop.start(())
    profile = tmp_path_factory.mktemp("chromium-profile")
    command = f"chromium {CHROMIUM_FLAGS} --user-data-dir={profile} {PAGE.as_uri()}"

    async def open_browser() -> None:
        backend = await AtspiBackend.connect()
        try:
            session = ScreenSession(backend)
            await session.open_app(command, timeout_s=60)
            # The desktop stops the browser with everything else it started.
            [process] = backend.launched
            desktop.processes["chromium"] = process
            desktop.pids["chromium"] = process.pid
            await session.wait_for(text="Order form", timeout_s=60)
        finally:
            await backend.close()

    try:
        with desktop.environment(), pytest.MonkeyPatch.context() as patch:
            patch.setenv("HOME", str(desktop.root / "home"))
            asyncio.run(open_browser())
        yield desktop
    finally:
        desktop.stop()


@pytest.fixture
async def browser(
    browser_desktop: VirtualDesktop, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ScreenSession]:
    monkeypatch.setenv("DISPLAY", browser_desktop.display)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", browser_desktop.bus_address)
    backend = await AtspiBackend.connect()
    session = ScreenSession(backend, budget=2000)
    try:
        await session.observe(pid=browser_desktop.pids["chromium"])
        yield session
    finally:
        await backend.close()


def only(snapshot: Snapshot | None, role: str, name: str) -> Element:
    assert snapshot is not None
    matches = [e for e in visible_elements(snapshot) if e.role == role and e.name == name]
    assert len(matches) == 1, f"one {role} {name!r} expected, found {len(matches)}"
    return matches[0]


async def test_page_elements_appear_in_the_observation(browser: ScreenSession) -> None:
    result = await browser.observe()
    assert result.snapshot is not None and result.snapshot.degraded is None
    assert result.text.startswith(f'window "{PAGE_TITLE} - Chromium"')
    for line in (
        f'document "{PAGE_TITLE}"',
        'heading "Order form"',
        'link "Read the details"',
        'button "Submit"',
        'entry "Your name" = ""',
    ):
        assert line in result.text, f"{line} missing from:\n{result.text}"


async def test_click_page_button_by_id_runs_its_script(browser: ScreenSession) -> None:
    button = only(browser.latest, "button", "Submit")

    await browser.click(button.id)

    found = await browser.wait_for(text="Order sent", timeout_s=10)
    assert found.snapshot is not None
    only(found.snapshot, "button", "Sent")


async def test_type_into_page_field_and_read_it_back(browser: ScreenSession) -> None:
    field = only(browser.latest, "entry", "Your name")

    await browser.type_text("Grace Hopper", field.id)

    found = await browser.wait_for(text="Grace Hopper", timeout_s=10)
    assert found.snapshot is not None
    assert only(found.snapshot, "entry", "Your name").value == "Grace Hopper"


async def test_chromium_without_its_flag_is_degraded_with_the_fix(
    browser: ScreenSession, browser_desktop: VirtualDesktop, tmp_path: Path
) -> None:
    """Started by hand without --force-renderer-accessibility, Chromium joins the bus but
    shows nothing, not even its own buttons: the read says why and what to do."""
    command = (
        "chromium", *CHROMIUM_FLAGS.split(), f"--user-data-dir={tmp_path}", PAGE.as_uri()
    )
    bare = AppSpec("bare-chromium", command, "Chromium", (1100, 0))
    browser_desktop.launch(bare)
    browser_desktop.wait_for_window(bare)
    try:
        found = None
        for _ in range(100):  # it joins the bus a moment after its window shows
            found = (await browser.observe(pid=browser_desktop.pids["bare-chromium"])).snapshot
            if found is not None and "(Chromium)" in (found.degraded or ""):
                break
            await asyncio.sleep(0.1)
        assert found is not None and found.degraded is not None
        assert "(Chromium) shows a window but exposes no elements" in found.degraded
        assert "--force-renderer-accessibility" in found.degraded
        assert len(found.elements) == 1
    finally:
        browser_desktop.stop_app("bare-chromium")
