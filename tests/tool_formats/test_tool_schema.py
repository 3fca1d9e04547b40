"""Input validation, careful JSON repair, and the tool diet."""

from __future__ import annotations

import pytest

from deskloop.server.protocol import Tool
from deskloop.server.tool_schema import (
    ToolSchemaInvalid,
    check_tool_schemas,
    first_sentence,
    repair_json,
    slim_tools,
    validate_input,
)
from tests.tool_formats.helpers import CLICK, SCROLL, grounded_click


def test_valid_input_has_no_problem() -> None:
    assert validate_input(CLICK, {"element_id": "e12", "double": True}) is None


@pytest.mark.parametrize(
    ("tool_input", "words"),
    [
        ({}, "'element_id' is a required property"),
        ({"element_id": "OK"}, "does not match"),
        ({"element_id": "e1", "extra": 1}, "Additional properties"),
        ({"element_id": "e1", "double": "yes"}, "is not of type 'boolean'"),
        (["e1"], "must be a JSON object"),
    ],
)
def test_invalid_input_says_what_is_wrong(tool_input: object, words: str) -> None:
    problem = validate_input(CLICK, tool_input)
    assert problem is not None and words in problem


def test_problem_names_the_field() -> None:
    problem = validate_input(SCROLL, {"element_id": "e1", "direction": "sideways"})
    assert problem is not None and "direction" in problem


def test_invalid_schema_is_refused_with_the_tool_name() -> None:
    broken = Tool(
        name="broken", input_schema={"type": "object", "properties": {"a": {"type": "strin"}}}
    )
    with pytest.raises(ToolSchemaInvalid, match="broken"):
        check_tool_schemas([broken])
    problem = validate_input(broken, {"a": "x"})  # while parsing: a problem, not a crash
    assert problem is not None and "not a valid JSON schema" in problem


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('Sure! Here it is: {"a": {"b": "}"}} hope that helps', {"a": {"b": "}"}}),
        ('{"a": 1, "b": [1, 2,],}', {"a": 1, "b": [1, 2]}),
        ("{'a': True, 'b': None}", {"a": True, "b": None}),
        ('{{"a": 1}}', {"a": 1}),
    ],
)
def test_repair_recovers_near_json(text: str, expected: dict[str, object]) -> None:
    assert repair_json(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1',
        "no json here",
        '{"a": }',
        "[1, 2]",
        "{1: 2}",
        "{{1}, {2}}",
        '{"a": "unterminated}',
    ],
)
def test_repair_never_invents_content(text: str) -> None:
    assert repair_json(text) is None


def test_first_sentence() -> None:
    assert first_sentence("Click an element. Ids come from e.g. the tree.") == "Click an element."
    assert first_sentence("One line\n\nSecond paragraph") == "One line"
    assert first_sentence("Version 1.5 is used. Then more.") == "Version 1.5 is used."


def test_slim_tools_shortens_and_keeps_the_constraint() -> None:
    tool = Tool(
        name="scroll",
        description="Scroll an element. Use it when content is hidden below the fold.",
        input_schema={
            "type": "object",
            "title": "ScrollInput",
            "description": "Input of scroll.",
            "properties": {
                "element_id": {
                    "type": "string",
                    "description": "The element. Must be scrollable.",
                    "examples": ["e3"],
                },
                "direction": {
                    "type": "string",
                    "enum": ["up", "down"],
                    "description": "Which way.",
                },
                "title": {"type": "string", "description": "A property named title stays."},
            },
            "required": ["element_id", "direction"],
        },
    )
    (slim,) = slim_tools([tool])
    assert slim.description == "Scroll an element."
    assert slim.input_schema == {
        "type": "object",
        "properties": {
            "element_id": {"type": "string", "description": "The element."},
            "direction": {"type": "string", "enum": ["up", "down"]},
            "title": {"type": "string", "description": "A property named title stays."},
        },
        "required": ["element_id", "direction"],
    }
    assert tool.description is not None and "fold" in tool.description  # the original is untouched
    assert len(slim.model_dump_json()) < len(tool.model_dump_json())


def test_a_long_enum_is_rendered_as_type_and_description_only() -> None:
    from deskloop.server.tool_schema import compact_enums

    turn_one = compact_enums([grounded_click([f"e{n}" for n in range(1, 40)])])
    turn_two = compact_enums([grounded_click([f"e{n}" for n in range(7, 90)])])
    assert turn_one == turn_two  # the rendered tools do not change from turn to turn
    assert turn_one[0].input_schema["properties"]["element_id"] == {
        "type": "string",
        "description": "An id on screen.",
    }
    # Short enums (a direction, a button) are still shown: they tell the model the choices.
    assert compact_enums([SCROLL]) == [SCROLL]
    # The diet keeps the description of a long enum (it is all the prompt says of it).
    slim = slim_tools([grounded_click([f"e{n}" for n in range(20)])])
    assert slim[0].input_schema["properties"]["element_id"]["description"] == "An id on screen."


def test_a_grounded_enum_is_never_rendered_however_short() -> None:
    """Three ids in the tool list made SmolLM2-135M name the first of them for every task."""
    from deskloop.server.tool_schema import compact_enums

    tool = grounded_click(["e19", "e22", "e26"])
    schema = tool.input_schema["properties"]["element_id"]
    marked = tool.model_copy(
        update={
            "input_schema": {
                **tool.input_schema,
                "properties": {"element_id": {**schema, "x-grounded": True}},
            }
        }
    )
    [shown] = compact_enums([marked])
    assert shown.input_schema["properties"]["element_id"] == {
        "type": "string",
        "description": "An id on screen.",
    }
    assert compact_enums([tool]) == [tool]  # unmarked and short: still shown
