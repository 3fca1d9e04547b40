"""The screen layer against real GTK3 apps on a real Xvfb and session bus."""

from __future__ import annotations

import io
import os
import signal

import pytest
from PIL import Image

from deskloop.screen.actions import ScreenSession
from deskloop.screen.errors import AppNotFoundError, ScreenError, StaleElementError
from deskloop.screen.observation import visible_elements
from deskloop.screen.tokens import count_tokens
from deskloop.screen.tree import Element, Snapshot

pytestmark = pytest.mark.desktop


def named(snapshot: Snapshot, role: str, name: str) -> Element:
    matches = [e for e in snapshot if e.role == role and e.name == name]
    assert matches, f"no {role} {name!r} in the snapshot"
    return matches[0]


def enabled_checkbox(snapshot: Snapshot) -> Element:
    boxes = [e for e in visible_elements(snapshot) if e.role == "check" and "disabled" not in e.states]
    assert boxes, "widget-factory page 1 shows enabled check buttons"
    return boxes[0]


async def show_page(session: ScreenSession, page: str) -> Snapshot:
    snapshot = (await session.observe(app="gtk3-widget-factory")).snapshot
    assert snapshot is not None
    tab = named(snapshot, "radio", page)
    if "checked" not in tab.states:
        await session.click(tab.id)
    assert session.latest is not None
    return session.latest


async def test_observation_of_widget_factory_fits_the_budget(session: ScreenSession) -> None:
    await show_page(session, "Page 1")
    result = await session.observe(app="gtk3-widget-factory", budget=300)
    lines = result.text.splitlines()
    assert lines[0].startswith('window "gtk3-widget-factory"')
    assert any('radio "Page 2"' in line for line in lines)
    assert count_tokens(result.text) <= 300
    assert lines[-1].endswith("more elements: use find_elements")


async def test_find_elements_reaches_what_the_budget_left_out(session: ScreenSession) -> None:
    await show_page(session, "Page 1")
    result = await session.observe(app="gtk3-widget-factory", budget=80)
    assert "radiobutton" not in result.text.split("\n", 1)[1] or "more elements" in result.text
    found = await session.find_elements("check checkbutton")
    lines = found.text.splitlines()
    assert lines and all(" check " in line and "checkbutton" in line for line in lines)


async def test_click_check_box_by_id_flips_its_state(session: ScreenSession) -> None:
    snapshot = await show_page(session, "Page 1")
    box = enabled_checkbox(snapshot)
    was_checked = "checked" in box.states

    result = await session.click(box.id)

    assert result.diff is not None
    assert [line.split()[1] for line in result.diff.changed] == [box.id]
    assert len(result.diff.added) == len(result.diff.removed) == 0
    again = await session.observe()
    assert again.snapshot is not None
    assert ("checked" in again.snapshot.elements[box.id].states) is not was_checked


async def test_switching_page_gives_a_diff_and_makes_old_ids_stale(session: ScreenSession) -> None:
    snapshot = await show_page(session, "Page 1")
    box = enabled_checkbox(snapshot)
    page2 = named(snapshot, "radio", "Page 2")
    try:
        result = await session.click(page2.id)
        assert result.diff is not None
        changed = "\n".join(result.diff.changed)
        assert f"~ {page2.id} radio \"Page 2\" checked" in changed
        assert result.diff.added and result.diff.removed
        assert any(line.startswith(f"- {box.id} ") for line in result.diff.removed)

        with pytest.raises(StaleElementError, match=r"stale id: .*observe again"):
            await session.click(box.id)
    finally:
        await show_page(session, "Page 1")


async def test_type_into_mousepad_by_id_and_read_it_back(session: ScreenSession) -> None:
    snapshot = (await session.observe(app="mousepad")).snapshot
    assert snapshot is not None
    [editor] = [e for e in visible_elements(snapshot) if e.role == "entry"]
    await session.set_value(editor.id, "")

    result = await session.type_text("hello from deskloop", editor.id)

    assert f'~ {editor.id} entry = "hello from deskloop"' in result.text
    again = await session.observe()
    assert again.snapshot is not None
    assert again.snapshot.elements[editor.id].value == "hello from deskloop"


async def test_keyboard_typing_reaches_the_focused_window(session: ScreenSession) -> None:
    snapshot = (await session.focus_window(app="mousepad")).snapshot
    assert snapshot is not None
    [editor] = [e for e in visible_elements(snapshot) if e.role == "entry"]
    await session.set_value(editor.id, "")
    await session.click(editor.id)

    await session.type_text("Keys 1!")
    await session.press_keys("ctrl+a")
    result = await session.type_text("replaced: Grüße → ok")

    assert result.snapshot is not None
    assert result.snapshot.elements[editor.id].value == "replaced: Grüße → ok"


async def test_unknown_app_says_which_apps_exist(session: ScreenSession) -> None:
    with pytest.raises(AppNotFoundError, match="gtk3-widget-factory"):
        await session.observe(app="no-such-app")


async def test_unknown_id_asks_for_a_current_one(session: ScreenSession) -> None:
    await session.observe(app="mousepad")
    with pytest.raises(Exception, match="use an id from the latest observation"):
        await session.click("e99999")


async def test_window_screenshot_is_a_png_of_the_window(session: ScreenSession) -> None:
    observed = await session.observe(app="mousepad")
    assert observed.snapshot is not None
    result, shot = await session.capture_screenshot()
    image = Image.open(io.BytesIO(shot.png))
    assert image.format == "PNG"
    window = observed.snapshot.window
    assert (image.width, image.height) == (window.width, window.height)
    assert shot.scale == 1.0 and "scale 1.000" in result.text
    colours = image.convert("RGB").getcolors(maxcolors=1 << 16) or []
    assert len(colours) > 10  # real pixels, not a blank area


async def test_screen_screenshot_is_downscaled_with_its_scale(session: ScreenSession) -> None:
    await session.observe(app="mousepad")
    _, shot = await session.capture_screenshot(window=False)
    assert max(shot.width, shot.height) == 1568
    assert shot.scale == pytest.approx(1568 / 2400)


async def test_scrolling_the_demo_list_shows_other_rows(session: ScreenSession) -> None:
    snapshot = (await session.observe(app="gtk3-demo")).snapshot
    assert snapshot is not None
    cells = [e for e in visible_elements(snapshot) if e.role == "cell" and e.name]
    try:
        result = await session.scroll("down", 10, cells[len(cells) // 2].id)
        assert result.diff is not None
        assert result.diff.added, "rows scrolled into view appear as added lines"
        assert any(line.startswith("- ") and '"Application Class"' in line
                   for line in result.diff.removed)
    finally:
        await session.scroll("up", 30)


async def test_wait_for_text_and_its_timeout(session: ScreenSession) -> None:
    snapshot = (await session.observe(app="mousepad")).snapshot
    assert snapshot is not None
    [editor] = [e for e in visible_elements(snapshot) if e.role == "entry"]
    await session.set_value(editor.id, "ready when you are")
    found = await session.wait_for(text="when you are", timeout_s=2)
    assert found.text.startswith("found: 'when you are'")
    with pytest.raises(ScreenError, match=r"timed out after 0\.3 s waiting for 'never there'"):
        await session.wait_for(text="never there", timeout_s=0.3)


async def test_open_app_waits_for_its_window(session: ScreenSession) -> None:
    result = await session.open_app("gtk3-icon-browser")
    assert result.snapshot is not None
    pid = result.snapshot.pid
    try:
        assert result.text.startswith("started gtk3-icon-browser (pid ")
        assert result.snapshot.app == "gtk3-icon-browser"
        assert len(visible_elements(result.snapshot)) > 3
    finally:
        os.kill(pid, signal.SIGTERM)


async def test_clicking_a_row_selects_it_even_behind_another_window(session: ScreenSession) -> None:
    """A tree cell's accessible action selects nothing; a row is clicked as a person would,
    with its window brought to the front first."""
    await session.observe(app="mousepad")  # the editor is the front window now
    snapshot = (await session.observe(app="gtk3-demo")).snapshot
    assert snapshot is not None
    cells = [e for e in visible_elements(snapshot) if e.role == "cell" and e.name]
    was = next((e.name for e in cells if "selected" in e.states), None)
    target = next(e for e in cells if "selected" not in e.states)
    result = await session.click(target.id)
    assert any(
        e.name == target.name and "selected" in e.states for e in visible_elements(result.snapshot)
    ), result.text
    if was is not None:  # put the demo list back for later tests
        now = (await session.observe(app="gtk3-demo")).snapshot
        assert now is not None
        back = [e for e in visible_elements(now) if e.role == "cell" and e.name == was]
        if back:
            await session.click(back[0].id)
