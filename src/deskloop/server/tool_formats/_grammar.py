"""Pieces of call grammars shared by the families: JSON schemas of calls as `%json` rules."""

from __future__ import annotations

import json
from typing import Any

from deskloop.server.protocol import Tool

# Keys that explain a schema without constraining it; left out of grammars (smaller, and
# a description quoting a marker like "<tool_call>" cannot confuse the grammar).
_EXPLANATORY = frozenset(
    {"title", "description", "examples", "$comment", "default", "x-grounded"}
)
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


_DEFINITION_KEYS = ("$defs", "definitions")


def _rewrite_refs(schema: Any, renames: dict[str, str]) -> Any:
    if isinstance(schema, list):
        return [_rewrite_refs(item, renames) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str) and value in renames:
            out[key] = renames[value]
        elif key in _LITERAL_VALUES:
            out[key] = value
        else:
            out[key] = _rewrite_refs(value, renames)
    return out


def hoist_definitions(schema: dict[str, Any], prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """`schema` without its `$defs`/`definitions`, and those definitions renamed with `prefix`.

    A tool schema nested inside a call schema cannot keep its own definitions: `#/$defs/X`
    resolves against the root. Pydantic-generated (MCP) schemas use them for every model.
    """
    definitions: dict[str, Any] = {}
    renames: dict[str, str] = {}
    for key in _DEFINITION_KEYS:
        for name, definition in (schema.get(key) or {}).items():
            renames[f"#/{key}/{name}"] = f"#/$defs/{prefix}{name}"
            definitions[f"{prefix}{name}"] = definition
    if not renames:
        return schema, {}
    body = {key: value for key, value in schema.items() if key not in _DEFINITION_KEYS}
    return _rewrite_refs(body, renames), _rewrite_refs(definitions, renames)


def with_definitions(sub_schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    """A part of a tool's schema, made standalone: the root's definitions come along."""
    standalone = dict(sub_schema) if isinstance(sub_schema, dict) else {}
    for key in _DEFINITION_KEYS:
        if key in root:
            standalone[key] = root[key]
    return standalone


def call_object_schema(tools: list[Tool], *, arguments_key: str) -> dict[str, Any]:
    """`{"name": <a declared tool>, <arguments_key>: <that tool's input>}` as one schema."""
    choices = []
    definitions: dict[str, Any] = {}
    for index, tool in enumerate(tools):
        arguments, tool_definitions = hoist_definitions(input_schema(tool), f"t{index}_")
        definitions.update(tool_definitions)
        choices.append(
            {
                "type": "object",
                "properties": {"name": {"const": tool.name}, arguments_key: arguments},
                "required": ["name", arguments_key],
                "additionalProperties": False,
            }
        )
    schema: dict[str, Any] = choices[0] if len(choices) == 1 else {"anyOf": choices}
    if definitions:
        schema = {**schema, "$defs": definitions}
    return {**schema, "x-guidance": JSON_STYLE}


def json_rule(schema: dict[str, Any]) -> str:
    """A Lark `%json` expression for `schema`."""
    return "%json " + json.dumps(schema, ensure_ascii=False)


def json_schema_with_style(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "x-guidance": JSON_STYLE}
