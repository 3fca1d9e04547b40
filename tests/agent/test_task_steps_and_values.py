"""A small model's task, one step at a time, with the values a person would type."""

import pytest

from deskloop.agent.task_steps import split_steps
from deskloop.agent.task_values import value_spans

STEPS = [
    ("Tick the unticked checkbutton in the widget factory.",
     [("Tick the unticked checkbutton in the widget factory", "point")]),
    ("In the widget factory, replace the text entry with the word deskloop.",
     [("In the widget factory, replace the text entry with the word deskloop", "set")]),
    ("Type hello into the first text entry, then select the radio button named Page 2",
     [("Type hello into the first text entry", "type"),
      ("select the radio button named Page 2", "point")]),
    ("Type hello into the entry and then select Page 2.",
     [("Type hello into the entry", "type"), ("select Page 2", "point")]),
    ("Select the table cell named Otto; type hi into the entry",
     [("Select the table cell named Otto", "point"), ("type hi into the entry", "type")]),
    ("Click Page 2 and type hello into the entry",
     [("Click Page 2", "point"), ("type hello into the entry", "type")]),
    ("Capture a screenshot, say what you see, then tick the checkbutton",
     [("Capture a screenshot, say what you see", "look"), ("tick the checkbutton", "point")]),
    ("Open the Edit menu of Mousepad and then press ctrl+s",
     [("Open the Edit menu of Mousepad", "point"), ("press ctrl+s", "keys")]),
    ("Type the words Buy milk at the end of the text in Mousepad",
     [("Type the words Buy milk at the end of the text in Mousepad", "type")]),
    ("Set the spin button of the widget factory to 42.",
     [("Set the spin button of the widget factory to 42", "set")]),
    ("Press the togglebutton in the widget factory.",
     [("Press the togglebutton in the widget factory", "point")]),
    # "and" between two nouns is not a second step.
    ("Select the rows Alpha and Beta in the list",
     [("Select the rows Alpha and Beta in the list", "point")]),
    ("What is on screen now?", [("What is on screen now", "look")]),
]


@pytest.mark.parametrize(("task", "expected"), STEPS, ids=[t for t, _ in STEPS])
def test_a_task_splits_into_the_steps_a_person_would_name(
    task: str, expected: list[tuple[str, str]]
) -> None:
    assert [(step.text, step.kind) for step in split_steps(task)] == expected


VALUES = [
    ("Type hello world into Mousepad.", ["hello world"]),
    ("Write the words deskloop was here in the Mousepad window.", ["deskloop was here"]),
    ("type the words Buy milk at the end of the text", ["Buy milk"]),
    ("In Mousepad, add the phone number 555-0142 at the end", ["555-0142"]),
    ("Type hello into the empty entry of the widget factory.", ["hello"]),
    ("In the widget factory, replace the text entry with the word deskloop.", ["deskloop"]),
    ("Set the spin button of the widget factory to 42.", ["42"]),
    ('Type "Dear Anna," into the entry', ["Dear Anna,"]),
    ("Enter anna@example.com in the To field", ["anna@example.com"]),
    ("Write the date 2026-12-07 in Mousepad", ["2026-12-07"]),
    ("Set the volume to 7.5", ["7.5"]),
    ("Tick the unticked checkbutton in the widget factory.", []),
]


@pytest.mark.parametrize(("task", "expected"), VALUES, ids=[t for t, _ in VALUES])
def test_the_values_of_a_task_are_what_a_person_would_type(task: str, expected: list[str]) -> None:
    assert value_spans(task) == expected
