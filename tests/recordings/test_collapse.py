"""Raw events into named steps, on synthetic event lists (no desktop needed)."""

from __future__ import annotations

from deskloop.recordings.collapse import Collapser
from deskloop.recordings.naming import is_volatile_name, stable_title
from deskloop.recordings.ranked_locators import locators_for
from deskloop.recordings.recording import Step
from deskloop.screen.recording_events import (
    ElementEvent,
    ElementFacts,
    KeyEvent,
    PointerEvent,
    RecordedEvent,
)
from deskloop.screen.tree import Box

WINDOW = ("window", "*Untitled 1 - Editor")


def element(role: str, name: str, **changes: object) -> ElementFacts:
    facts: dict[str, object] = {
        "app": "editor",
        "pid": 42,
        "role": role,
        "name": name,
        "path": (WINDOW,),
        "index": 0,
        "box": Box(110, 220, 80, 20),
        "window_title": WINDOW[1],
        "window_box": Box(100, 200, 600, 400),
    }
    facts.update(changes)
    return ElementFacts(**facts)  # type: ignore[arg-type]


def press(facts: ElementFacts, time: float) -> list[RecordedEvent]:
    return [
        PointerEvent("press", 10, 10, 1, time, facts),
        PointerEvent("release", 10, 10, 1, time + 0.01),
    ]


def typed(facts: ElementFacts, text: str, start: float) -> list[RecordedEvent]:
    """Keys and the text events they cause, one pair per character."""
    events: list[RecordedEvent] = []
    for number, character in enumerate(text):
        time = start + number * 0.05
        events.append(KeyEvent(character, frozenset(), time, character))
        value = text[: number + 1]
        events.append(ElementEvent("text_inserted", _with(facts, value), time + 0.01, character))
    return events


def _with(facts: ElementFacts, value: str) -> ElementFacts:
    return ElementFacts(**{**facts.__dict__, "value": value, "states": frozenset({"focused"})})


def collapse(events: list[RecordedEvent], **options: object) -> list[Step]:
    return Collapser(**options).feed_all(events)  # type: ignore[arg-type]


def test_a_check_box_click_is_one_step_with_its_result() -> None:
    bold = element("check", "Bold")
    steps = collapse([*press(bold, 1.0), ElementEvent("checked", bold, 1.02)])
    assert [step.intent for step in steps] == ["click check box 'Bold' in window 'Editor'"]
    assert steps[0].postcondition is not None and steps[0].postcondition.kind == "checked"


def test_a_result_heard_before_the_press_still_counts() -> None:
    radio = element("radio", "Large")
    steps = collapse([ElementEvent("checked", radio, 0.99), *press(radio, 1.0)])
    assert steps[0].postcondition is not None and steps[0].postcondition.kind == "checked"


def test_typing_into_a_field_is_one_step_with_the_whole_text() -> None:
    to = element("entry", "To")
    steps = collapse([*press(to, 1.0), *typed(to, "anna@example.com", 1.5)])
    assert len(steps) == 1
    assert steps[0].action == "set_text"
    assert steps[0].text == "anna@example.com"
    assert steps[0].intent == "set text of entry 'To' to 'anna@example.com' in window 'Editor'"
    assert steps[0].postcondition is not None and steps[0].postcondition.value == "anna@example.com"


def test_a_paste_is_part_of_the_field_step_not_a_chord() -> None:
    to = element("entry", "To")
    events: list[RecordedEvent] = [
        *press(to, 1.0),
        *typed(to, "anna", 1.2),
        KeyEvent("v", frozenset({"ctrl"}), 2.0),
        ElementEvent("text_inserted", _with(to, "anna@example.com"), 2.01, "@example.com"),
    ]
    steps = collapse(events)
    assert [step.action for step in steps] == ["set_text"]
    assert steps[0].text == "anna@example.com"


def test_a_chord_outside_a_field_is_a_keys_step() -> None:
    canvas = element("check", "Bold")
    steps = collapse([*press(canvas, 1.0), KeyEvent("s", frozenset({"ctrl"}), 3.0)])
    assert steps[-1].action == "keys"
    assert steps[-1].text == "ctrl+s"
    assert steps[-1].intent == "press Ctrl+S"


def test_a_menu_title_then_an_item_is_one_menu_step() -> None:
    edit = element("menu", "Edit", path=(WINDOW,))
    paste = element("menuitem", "Paste", path=(WINDOW, ("menu", "Edit")))
    steps = collapse([*press(edit, 1.0), *press(paste, 2.0)])
    assert [step.intent for step in steps] == ["choose menu Edit > Paste in window 'Editor'"]
    assert steps[0].menu_path == ("Edit", "Paste")


def test_a_menu_item_highlighted_before_the_press_is_the_choice() -> None:
    """The menu may close before the press is looked up: the lookup then finds what lay
    under the menu, and the item last highlighted is the one chosen."""
    edit = element("menu", "Edit")
    undo = element("menuitem", "Undo", path=(WINDOW, ("menu", "Edit")))
    under = element("filler", "")
    steps = collapse([*press(edit, 1.0), ElementEvent("selected", undo, 1.5), *press(under, 2.0)])
    assert [step.menu_path for step in steps] == [("Edit", "Undo")]


def test_a_row_press_is_a_select_step() -> None:
    row = element("cell", "Assistant")
    steps = collapse([*press(row, 1.0), ElementEvent("selected", row, 1.01)])
    assert steps[0].intent == "select row 'Assistant' in window 'Editor'"
    assert steps[0].postcondition is not None and steps[0].postcondition.kind == "selected"


def test_a_password_is_never_kept() -> None:
    field = element("password", "Password", secret=True)
    events: list[RecordedEvent] = [*press(field, 1.0)]
    for number in range(6):
        events.append(KeyEvent("", frozenset(), 1.1 + number / 10, "", secret=True))
        hidden = ElementFacts(**{**field.__dict__, "states": frozenset({"focused"})})
        events.append(ElementEvent("text_inserted", hidden, 1.11 + number / 10, ""))
    steps = collapse(events)
    assert len(steps) == 1
    assert steps[0].secret == "password" and steps[0].text == ""
    assert steps[0].postcondition is None


def test_text_changing_in_another_field_is_not_what_was_typed() -> None:
    shown = element("entry", "Mirror")
    steps = collapse([ElementEvent("text_inserted", shown, 1.0, "secret")])
    assert steps == []


def test_a_new_app_gets_an_open_app_step_first() -> None:
    bold = element("check", "Bold")
    steps = collapse(press(bold, 1.0), apps_at_start=frozenset({"mousepad"}))
    assert [step.intent for step in steps][:1] == ["open app editor"]
    assert steps[0].action == "open_app" and steps[0].text == "editor"


def test_only_the_chosen_app_is_recorded() -> None:
    bold = element("check", "Bold")
    other = element("check", "Italic", app="other")
    steps = collapse([*press(other, 1.0), *press(bold, 2.0)], only_app="editor")
    assert [step.intent for step in steps] == ["click check box 'Bold' in window 'Editor'"]


def test_locators_are_ranked_and_skip_changing_names() -> None:
    facts = element(
        "button", "Send", stable_id="send-button", path=(WINDOW, ("panel", "3 hours ago"))
    )
    kinds = [locator.kind for locator in locators_for(facts)]
    assert kinds == ["stable_id", "role_name", "path", "index", "bounds"]
    path = locators_for(facts)[2].path
    assert [(part.role, part.name) for part in path] == [("window", "Editor")]
    assert locators_for(facts)[-1].box == (10, 20, 80, 20)
    counted = locators_for(element("label", "12 items"))
    assert "role_name" not in [locator.kind for locator in counted]


def test_destructive_steps_are_marked() -> None:
    steps = collapse(press(element("button", "Delete"), 1.0))
    assert steps[0].risk == "destructive"


def test_changing_names_and_titles() -> None:
    for name in ("3 hours ago", "12 items", "10:42", "2024-05-01", "42", "just now"):
        assert is_volatile_name(name), name
    for name in ("Bold", "Paste", "page 2", "Assistant"):
        assert not is_volatile_name(name), name
    assert stable_title("*Untitled 1 - Mousepad", "mousepad") == "Mousepad"
    assert stable_title("GTK+ Widget Factory", "gtk3-widget-factory") == "GTK+ Widget Factory"
    assert stable_title("Inbox (12) — Mail", "mail") == "Mail"


def test_a_window_title_that_changes_while_recording_is_not_kept() -> None:
    """gtk3-demo titles its window after the selected demo: the title names no window."""
    first = element(
        "cell",
        "Assistant",
        path=(("window", "Application Class"),),
        window_title="Application Class",
    )
    after = element("cell", "Assistant", path=(("window", "Assistant"),), window_title="Assistant")
    steps = collapse([*press(first, 1.0), ElementEvent("selected", after, 1.02)])
    assert steps[0].intent == "select row 'Assistant' in editor"
    assert steps[0].window == ""
    assert steps[0].postcondition is not None and steps[0].postcondition.kind == "selected"
    assert all(
        part.name != "Application Class" for locator in steps[0].locators for part in locator.path
    )
