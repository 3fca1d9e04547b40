"""Typing lands only where text can go; anything else is an error the model reads."""

from __future__ import annotations

import pytest

from deskloop.screen.actions import ScreenSession
from deskloop.screen.errors import ActionFailedError
from deskloop.screen.observation import visible_elements

pytestmark = pytest.mark.desktop


async def test_typing_into_a_menu_is_refused_and_typing_into_the_editor_still_works(
    session: ScreenSession,
) -> None:
    snapshot = (await session.observe(app="mousepad")).snapshot
    assert snapshot is not None
    menu = next(e for e in visible_elements(snapshot) if e.role == "menu" and e.name == "File")
    [editor] = [e for e in visible_elements(snapshot) if e.role == "entry"]
    for _ in range(2):
        with pytest.raises(ActionFailedError, match=f"{menu.id} is a menu .'File'. and takes no text"):
            await session.type_text("hello", menu.id)
    await session.set_value(editor.id, "")
    result = await session.type_text("still typing", editor.id)
    assert f'~ {editor.id} entry = "still typing"' in result.text
