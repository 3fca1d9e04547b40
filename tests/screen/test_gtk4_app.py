"""GTK 4 apps through the AT-SPI backend: gtk4-demo gives a tree (GTK 4 sets no SHOWING
below the window, so VISIBLE and the boxes stand in); gtk4-widget-factory 4.8 never joins
the accessibility bus here, and is reported as degraded with the reason."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator

import pytest

from deskloop.screen.actions import ScreenSession
from deskloop.screen.backends.atspi.backend import AtspiBackend
from deskloop.screen.errors import DegradedTreeError
from deskloop.screen.observation import visible_elements
from deskloop.screen.virtual_desktop import AppSpec, VirtualDesktop

pytestmark = [pytest.mark.desktop, pytest.mark.slow]

if shutil.which("gtk4-demo") is None:
    pytest.skip("gtk-4-examples is not installed (scripts/debian-packages.txt)",
                allow_module_level=True)

GTK4_DEMO = AppSpec("gtk4-demo", ("gtk4-demo",), "gtk4-demo", (0, 0))
GTK4_WIDGET_FACTORY = AppSpec(
    "gtk4-widget-factory", ("gtk4-widget-factory",), "gtk4-widget-factory", (900, 0)
)


@pytest.fixture(scope="module")
def gtk4_desktop() -> Iterator[VirtualDesktop]:
    running = VirtualDesktop.start((GTK4_DEMO, GTK4_WIDGET_FACTORY))
    try:
        running.wait_for_trees((GTK4_DEMO,))
        yield running
    finally:
        running.stop()


@pytest.fixture
async def gtk4(
    gtk4_desktop: VirtualDesktop, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ScreenSession]:
    monkeypatch.setenv("DISPLAY", gtk4_desktop.display)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", gtk4_desktop.bus_address)
    backend = await AtspiBackend.connect()
    try:
        yield ScreenSession(backend, budget=2000)
    finally:
        await backend.close()


async def test_gtk4_demo_gives_a_tree(gtk4: ScreenSession, gtk4_desktop: VirtualDesktop) -> None:
    result = await gtk4.observe(pid=gtk4_desktop.pids["gtk4-demo"])
    assert result.snapshot is not None and result.snapshot.degraded is None
    assert result.text.startswith('window "GTK Demo" app "gtk4-demo"')
    for line in ('list "Demo list"', 'panel "Application Class"', 'button "Run" disabled',
                 'entry "Info" = "GTK Demo'):
        assert line in result.text, f"{line} missing from:\n{result.text}"


async def test_gtk4_tab_click_selects_it_and_shows_its_page(
    gtk4: ScreenSession, gtk4_desktop: VirtualDesktop
) -> None:
    snapshot = (await gtk4.observe(pid=gtk4_desktop.pids["gtk4-demo"])).snapshot
    assert snapshot is not None
    tabs = [e for e in visible_elements(snapshot) if e.role == "tab"]
    source = tabs[1]  # Info, Source, then the demo's files
    assert "selected" not in source.states

    result = await gtk4.click(source.id)

    assert result.diff is not None
    assert any(line.startswith(f"~ {source.id} tab") and "selected" in line
               for line in result.diff.changed)
    assert any(' entry "Source" = ' in line for line in result.diff.added)
    await gtk4.click(tabs[0].id)


async def test_app_off_the_accessibility_bus_is_degraded_with_a_reason(
    gtk4: ScreenSession, gtk4_desktop: VirtualDesktop
) -> None:
    pid = gtk4_desktop.pids["gtk4-widget-factory"]

    result = await gtk4.observe(pid=pid)

    assert result.snapshot is not None
    assert result.snapshot.degraded is not None
    assert "not on the accessibility bus" in result.snapshot.degraded
    assert "capture_screenshot" in result.snapshot.degraded
    assert result.text.startswith(f'window "GTK Widget Factory" app "gtk4-widget-factory" pid {pid}')
    assert "\ndegraded: gtk4-widget-factory shows a window but is not on" in result.text
    with pytest.raises(DegradedTreeError, match="use capture_screenshot"):
        await gtk4.find_elements("button")
