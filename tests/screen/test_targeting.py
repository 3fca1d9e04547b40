"""The window a task names, among running apps (names and window titles as a desktop has)."""

from __future__ import annotations

from deskloop.screen.backend import AppInfo
from deskloop.screen.targeting import named_window

APPS = [
    AppInfo("gtk3-widget-factory", 11, ("GTK+ Widget Factory",)),
    AppInfo("gtk3-demo", 12, ("GTK+ Code Demos",)),
    AppInfo("mousepad", 13, ("Untitled 1 - Mousepad",)),
]


def pick(task: str) -> int | None:
    found = named_window(task, APPS)
    return found.app.pid if found else None


def test_an_app_named_in_the_task_is_picked_by_name_or_title() -> None:
    assert pick("Type hello into Mousepad") == 13
    assert pick("In the widget factory, tick the check box") == 11
    assert pick("Open the Code Demos window and press Run") == 12
    assert pick("click Run in gtk3-demo") == 12


def test_a_task_naming_no_app_gets_none_and_the_header_says_why() -> None:
    assert pick("What is 2+2?") is None
    assert pick("Press the OK button") is None
    found = named_window("Type hello into Mousepad", APPS)
    assert found is not None and found.why == "named in the task: 'mousepad'"


def test_two_equally_named_apps_are_not_guessed_between() -> None:
    tie = [AppInfo("editor-one", 1, ("Notes",)), AppInfo("editor-two", 2, ("Notes",))]
    assert named_window("write in Notes", tie) is None
