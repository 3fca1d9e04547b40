"""The registry refuses tools the Messages API would refuse, and prices each schema."""

import pytest
from tool_fakes import fake_tool

from deskloop.tools import ToolRegistrationError, ToolRegistry, estimate_tokens


def test_definitions_are_what_the_messages_api_takes() -> None:
    registry = ToolRegistry([fake_tool("observe_window"), fake_tool("click")])
    assert registry.names() == ["observe_window", "click"]
    assert registry.definitions()[1] == {
        "name": "click",
        "description": "fake tool click",
        "input_schema": registry.get("click").input_schema,  # type: ignore[union-attr]
    }
    assert "click" in registry and len(registry) == 2


@pytest.mark.parametrize("name", ["has space", "dotted.name", "", "x" * 65])
def test_names_the_api_would_reject_are_refused(name: str) -> None:
    with pytest.raises(ToolRegistrationError, match="letters, digits"):
        ToolRegistry([fake_tool(name)])


def test_two_tools_with_one_name_are_refused_naming_both_sources() -> None:
    registry = ToolRegistry([fake_tool("search", source="native")])
    with pytest.raises(ToolRegistrationError, match="mcp:web clashes with the one from native"):
        registry.add(fake_tool("search", source="mcp:web"))


def test_schemas_must_be_valid_objects() -> None:
    with pytest.raises(ToolRegistrationError, match='"type": "object"'):
        ToolRegistry([fake_tool("a", schema={"type": "string"})])
    with pytest.raises(ToolRegistrationError, match="invalid input_schema"):
        ToolRegistry([fake_tool("b", schema={"type": "object", "required": "text"})])


def test_a_server_switched_off_takes_its_tools_with_it() -> None:
    registry = ToolRegistry(
        [
            fake_tool("mcp__time__now", source="mcp:time"),
            fake_tool("click"),
            fake_tool("mcp__time__convert", source="mcp:time"),
        ]
    )
    assert registry.remove_source("mcp:time") == ["mcp__time__now", "mcp__time__convert"]
    assert registry.names() == ["click"]


def test_schema_costs_grow_with_the_schema() -> None:
    big_schema = {
        "type": "object",
        "properties": {
            f"field_{i}": {"type": "string", "description": "a long description " * 5}
            for i in range(10)
        },
    }
    registry = ToolRegistry([fake_tool("small"), fake_tool("big", schema=big_schema)])
    costs = {cost.name: cost.tokens for cost in registry.schema_costs()}
    assert 10 < costs["small"] < costs["big"]
    counted = registry.schema_costs(count=len)
    assert counted[0].tokens == len(
        '{"name": "small", "description": "fake tool small", "input_schema": '
        '{"type": "object", "properties": {"text": {"type": "string"}}, '
        '"required": ["text"], "additionalProperties": false}}'
    )


def test_token_estimate_counts_words_numbers_and_marks() -> None:
    assert estimate_tokens('{"id": 12}') == 7


def test_third_party_tools_that_cannot_be_offered_are_left_out_one_by_one() -> None:
    registry = ToolRegistry([fake_tool("mcp__a_b__echo", source="mcp:a_b")])
    refused = registry.add_each(
        [
            fake_tool("mcp__a_b__echo", source="mcp:a.b"),
            fake_tool("mcp__a_b__time", source="mcp:a.b"),
            fake_tool("mcp__a_b__bad", schema={"type": "array"}, source="mcp:a.b"),
        ]
    )
    assert registry.names() == ["mcp__a_b__echo", "mcp__a_b__time"]
    assert [str(problem) for problem in refused] == [
        "tool 'mcp__a_b__echo' from mcp:a.b clashes with the one from mcp:a_b; rename one of them",
        'tool \'mcp__a_b__bad\': input_schema must have "type": "object" (Messages API rule)',
    ]
