"""Pieces of call grammars shared by the families: JSON schemas of calls as `%json` rules."""

from __future__ import annotations

import json
from typing import Any

from deskloop.server.protocol import Tool

# Keys that explain a schema without constraining it; left out of grammars (smaller, and
# a description quoting a marker like "<tool_call>" cannot confuse the grammar).
_EXPLANATORY = frozenset({"title", "description", "examples", "$comment", "default"})
# Keys whose values are data, not subschemas: copied untouched.
_LITERAL_VALUES = frozenset({"enum", "const", "required"})

# Compact separators with one space, as json.dumps writes them and as the prompts show
# calls; without a limit a small model can pad a call with whitespace until max_tokens.
JSON_STYLE = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
    # Keywords llguidance cannot enforce are ignored; the parser still validates the input.
    "lenient": True,
}


def constraint_schema(schema: Any) -> Any:
    """`schema` without its explanatory keys (property names are kept, whatever they are)."""
    if isinstance(schema, list):
        return [constraint_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _EXPLANATORY:
            continue
        if key in _LITERAL_VALUES:
            out[key] = value
        elif key in ("properties", "patternProperties", "$defs", "definitions") and isinstance(
            value, dict
        ):
            out[key] = {name: constraint_schema(sub) for name, sub in value.items()}
        else:
            out[key] = constraint_schema(value)
    return out


def input_schema(tool: Tool) -> dict[str, Any]:
    """A tool's input schema as a constraint: always an object."""
    schema = constraint_schema(tool.input_schema)
    if not isinstance(schema, dict):
        return {"type": "object"}
    if "type" not in schema:
        schema["type"] = "object"
    return schema


def call_object_schema(tools: list[Tool], *, arguments_key: str) -> dict[str, Any]:
    """`{"name": <a declared tool>, <arguments_key>: <that tool's input>}` as one schema."""
    choices = [
        {
            "type": "object",
            "properties": {"name": {"const": tool.name}, arguments_key: input_schema(tool)},
            "required": ["name", arguments_key],
            "additionalProperties": False,
        }
        for tool in tools
    ]
    schema: dict[str, Any] = choices[0] if len(choices) == 1 else {"anyOf": choices}
    return {**schema, "x-guidance": JSON_STYLE}


def json_rule(schema: dict[str, Any]) -> str:
    """A Lark `%json` expression for `schema`."""
    return "%json " + json.dumps(schema, ensure_ascii=False)


def json_schema_with_style(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "x-guidance": JSON_STYLE}
