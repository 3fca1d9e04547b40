"""Pieces of call grammars shared by the families: JSON schemas of calls as `%json` rules."""

from __future__ import annotations

import functools
import json
from typing import Any

from deskloop.server.protocol import Tool
from deskloop.server.tool_formats.base import MarkerSyntax, lark_string

# Keys that explain a schema without constraining it; left out of grammars (smaller, and
# a description quoting a marker like "<tool_call>" cannot confuse the grammar).
_EXPLANATORY = frozenset({"title", "description", "examples", "$comment", "default", "x-grounded"})
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
    """A tool's input schema as a constraint: always an object, of its declared properties only."""
    schema = constraint_schema(tool.input_schema)
    if not isinstance(schema, dict):
        schema = {"type": "object"}
    if "type" not in schema:
        schema["type"] = "object"
    closed = declared_properties_only(schema, top=True)
    assert isinstance(closed, dict)
    return closed


# Keywords that combine or refer to other schemas: an object described through them may get
# its properties from elsewhere, so it is left as written.
_COMPOSED = frozenset({"allOf", "anyOf", "oneOf", "$ref", "not", "if", "dependentSchemas"})
# Keywords whose value is one subschema, and those whose value is a list of them.
_ONE_SUBSCHEMA = ("items", "additionalProperties", "contains", "not", "if", "then", "else")
_SUBSCHEMA_LISTS = ("prefixItems", "allOf", "anyOf", "oneOf")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")


def _closes(schema: dict[str, Any], *, top: bool) -> bool:
    if "additionalProperties" in schema or "unevaluatedProperties" in schema:
        return False  # the schema says what it allows beyond its properties
    if _COMPOSED & schema.keys():
        return False
    is_object = schema.get("type") == "object" or "properties" in schema
    # A nested `{"type": "object"}` that declares nothing is a free mapping by intent (headers,
    # metadata): closed it could only ever be {}. The input itself declares its arguments.
    return is_object and (top or "properties" in schema or "patternProperties" in schema)


def declared_properties_only(schema: Any, *, top: bool = False) -> Any:
    """`schema` where an object admits only its declared properties, required ones first.

    JSON Schema allows undeclared properties unless `additionalProperties` says otherwise,
    and a grammar built from it lets a small model run on inside them (SmolLM2-135M asked
    for `click` with one `id` wrote `{"id": "e2", "args": {...` four objects deep until
    max_tokens, issue 17). An explicit `additionalProperties` (true or a schema) is kept.
    llguidance writes properties in schema order, so required ones first means the object
    can end as soon as they are written.
    """
    if isinstance(schema, list):
        return [declared_properties_only(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: declared_properties_only(sub) for name, sub in value.items()}
        elif key in _ONE_SUBSCHEMA or key in _SUBSCHEMA_LISTS:
            out[key] = declared_properties_only(value)
        else:
            out[key] = value
    if not _closes(out, top=top):
        return out
    properties = out.get("properties")
    properties = dict(properties) if isinstance(properties, dict) else {}
    required = [name for name in out.get("required", []) if isinstance(name, str)]
    for name in required:
        properties.setdefault(name, {})  # required but undeclared: declared, any value
    first = {name: sub for name, sub in properties.items() if name in required}
    rest = {name: sub for name, sub in properties.items() if name not in required}
    if properties:
        out["properties"] = {**first, **rest}
    out["additionalProperties"] = False
    return out


def ordered_properties(schema: dict[str, Any]) -> list[tuple[str, Any, bool]]:
    """(name, subschema, required) of an object schema's properties, required ones first."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return []
    required = set(schema.get("required", []))
    listed = [(name, sub, name in required) for name, sub in properties.items()]
    return [item for item in listed if item[2]] + [item for item in listed if not item[2]]


_DEFINITION_KEYS = ("$defs", "definitions")


def with_definitions(sub_schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    """A part of a tool's schema, made standalone: the root's definitions come along."""
    standalone = dict(sub_schema) if isinstance(sub_schema, dict) else {}
    for key in _DEFINITION_KEYS:
        if key in root:
            standalone[key] = root[key]
    return standalone


def named_calls(
    tools: list[Tool], marker: MarkerSyntax, *, before: str, between: str, after: str
) -> str:
    """Lark alternatives `before NAME between ARGUMENTS after`, one per tool.

    The name is written in the tokens the vocabulary uses for it there (`MarkerSyntax.spelled`),
    the arguments follow that tool's schema.
    """
    return " | ".join(
        f"{marker.spelled(tool.name, before=before, after=between)} "
        f"{json_rule(json_schema_with_style(input_schema(tool)))} {lark_string(after)}"
        for tool in tools
    )


def pattern_regex(schema: Any) -> str | None:
    """A Lark regex (`/.../`) for a string schema's `pattern`, or None (no pattern, one not
    anchored at both ends, or one llguidance cannot use: look-arounds, back-references).

    For the families that write strings bare (Qwen3-Coder, Gemma): the JSON families get the
    pattern through `%json`; without it these let a small model write any id (`e7x`), which
    validation then refuses, and the value's end is never forced.
    """
    if not isinstance(schema, dict) or not isinstance(schema.get("pattern"), str):
        return None
    return _pattern_regex(schema["pattern"])


@functools.lru_cache(maxsize=256)
def _pattern_regex(pattern: str) -> str | None:
    from llguidance import LLMatcher

    # Only a pattern anchored at both ends (`^e[0-9]+$`): JSON Schema patterns match
    # anywhere, and a free tail would run on over the closing tag that follows the value.
    if not (pattern.startswith("^") and pattern.endswith("$") and not pattern.endswith("\\$")):
        return None
    regex = "/" + pattern[1:-1].replace("/", "\\/") + "/"
    if LLMatcher.validate_grammar(LLMatcher.grammar_from_lark(f"start: {regex}")):
        return None  # an error message: the string stays free, validation checks it
    return regex


def json_rule(schema: dict[str, Any]) -> str:
    """A Lark `%json` expression for `schema`."""
    return "%json " + json.dumps(schema, ensure_ascii=False)


def json_schema_with_style(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "x-guidance": JSON_STYLE}
