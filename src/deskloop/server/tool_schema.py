"""Tool input schemas: validating inputs, repairing near-JSON, and slimming tools for small models."""

from __future__ import annotations

import ast
import json
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from deskloop.errors import DeskloopError
from deskloop.server.protocol import Tool

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

# jsonschema (about 10 MB resident) is imported by the first request that brings tools:
# `deskloop serve` keeps what it does not use out of memory (issue 21).


class ToolSchemaInvalid(DeskloopError):
    """A tool whose `input_schema` is not a valid JSON schema."""


@lru_cache(maxsize=256)
def _validator_for(schema_text: str) -> Validator:
    import jsonschema

    schema = json.loads(schema_text)
    validator_class = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    validator_class.check_schema(schema)
    validator: Validator = validator_class(schema)
    return validator


def _validator(tool: Tool) -> Validator:
    from jsonschema.exceptions import SchemaError

    try:
        return _validator_for(json.dumps(tool.input_schema, sort_keys=True))
    except SchemaError as exc:
        raise ToolSchemaInvalid(
            f"tools: the input_schema of {tool.name!r} is not a valid JSON schema "
            f"({exc.message}); fix the schema or leave the tool out"
        ) from exc


def check_tool_schemas(tools: list[Tool]) -> None:
    """Refuse, with a message naming the tool, any tool whose schema cannot validate inputs."""
    for tool in tools:
        _validator(tool)


def validate_input(tool: Tool, tool_input: Any) -> str | None:
    """Why `tool_input` is not a valid input for `tool`, or None when it is."""
    if not isinstance(tool_input, dict):
        return f"the input of {tool.name} must be a JSON object, not {type(tool_input).__name__}"
    try:
        validator = _validator(tool)
    except ToolSchemaInvalid as exc:
        # Mid-generation there is no one to refuse: the call is just not valid. Requests are
        # refused earlier, with check_tool_schemas.
        return str(exc)
    from jsonschema.exceptions import best_match

    error = best_match(validator.iter_errors(tool_input))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path)
    return f"{tool.name} input{' at ' + where if where else ''}: {error.message}"


_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def _outermost_object(text: str) -> str | None:
    """The first balanced `{...}` in `text` (braces inside strings ignored), or None."""
    start = text.find("{")
    if start < 0:
        return None
    depth = 0
    quote = ""
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start : index + 1]
    return None


def _python_literal(text: str) -> Any:
    """Python-literal syntax (single quotes, True/False/None), which small models write."""
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def repair_json(text: str) -> dict[str, Any] | None:
    """A JSON object recovered from near-JSON, or None.

    Careful by design: it removes code fences, surrounding prose, trailing commas and
    doubled braces, and reads Python-literal dicts; it never invents missing content
    (an object cut short stays unrepaired).
    """
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    candidate = _outermost_object(text)
    if candidate is None:
        return None
    attempts = [candidate, _TRAILING_COMMA.sub(r"\1", candidate)]
    if candidate.startswith("{{") and candidate.endswith("}}"):
        attempts.append(candidate[1:-1])
    for attempt in attempts:
        try:
            value = json.loads(attempt)
        except (json.JSONDecodeError, RecursionError):
            value = _python_literal(attempt)
        if isinstance(value, dict) and all(isinstance(key, str) for key in value):
            return value
    return None


# --- tool diet -----------------------------------------------------------------------

# Keywords that only explain a schema; the constrained decoder enforces the rest.
_EXPLANATORY_KEYWORDS = frozenset({"title", "examples", "$comment"})
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'`])|\n\s*\n")


def first_sentence(text: str) -> str:
    """The first sentence (or paragraph) of `text`, whitespace-normalized."""
    head = _SENTENCE_END.split(text.strip(), maxsplit=1)[0]
    return " ".join(head.split())


def _states_its_values(schema: dict[str, Any]) -> bool:
    if _is_long_enum(schema):
        return False  # its values are not rendered (compact_enums): the description stays
    return "enum" in schema or "const" in schema or schema.get("type") == "boolean"


# --- long enums ----------------------------------------------------------------------

# An enum longer than this is rendered as its type and description only. Clients that
# ground a parameter in what is on screen (deskloop's agent sends the ids of the latest
# observation) change the values every turn; rendered, they would change the prompt and
# defeat the prefix cache, and the values are in the conversation already. The constraint
# grammar is built from the unchanged tools, so every value is still enforced.
ENUM_RENDER_LIMIT = 8
# Set by a client on an enum of what exists right now (ids on screen, running apps): never
# rendered, however short. Three ids in the tool list made SmolLM2-135M name the first of
# them for every task; and a short list changes from turn to turn like a long one.
GROUNDED_KEY = "x-grounded"


def _is_long_enum(schema: dict[str, Any]) -> bool:
    values = schema.get("enum")
    return isinstance(values, list) and (
        len(values) > ENUM_RENDER_LIMIT or schema.get(GROUNDED_KEY) is True
    )


def _enum_type(values: list[Any]) -> str | None:
    kinds = {type(value) for value in values}
    if kinds == {str}:
        return "string"
    if kinds <= {int} and bool not in kinds:
        return "integer"
    if kinds <= {int, float}:
        return "number"
    return None


def _compact_schema(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_compact_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if _is_long_enum(schema):
        compact = {key: value for key, value in schema.items() if key not in ("enum", GROUNDED_KEY)}
        kind = _enum_type(schema["enum"])
        if "type" not in compact and kind is not None:
            compact = {"type": kind, **compact}
        return compact
    # The mark is for the server, not the model: left out of every prompt.
    return {key: _compact_schema(value) for key, value in schema.items() if key != GROUNDED_KEY}


def compact_enums(tools: list[Tool]) -> list[Tool]:
    """The tools as the prompt shows them: enums of more than 8 values without their values."""
    compacted = []
    for tool in tools:
        schema = _compact_schema(tool.input_schema)
        compacted.append(
            tool
            if schema == tool.input_schema
            else tool.model_copy(update={"input_schema": schema})
        )
    return compacted


def _slim_schema(schema: Any, *, top: bool) -> Any:
    if isinstance(schema, list):
        return [_slim_schema(item, top=False) for item in schema]
    if not isinstance(schema, dict):
        return schema
    slim: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _EXPLANATORY_KEYWORDS:
            continue
        if key in ("enum", "const", "required", "default"):
            slim[key] = value
        elif key == "description" and isinstance(value, str):
            if top or _states_its_values(schema):
                continue
            slim[key] = first_sentence(value)
        elif key in ("properties", "patternProperties", "$defs", "definitions") and isinstance(
            value, dict
        ):
            slim[key] = {name: _slim_schema(sub, top=False) for name, sub in value.items()}
        else:
            slim[key] = _slim_schema(value, top=False)
    return slim


def slim_tools(tools: list[Tool]) -> list[Tool]:
    """`--tool-diet`: descriptions cut to their first sentence, explanatory schema keys dropped.

    Property descriptions are kept (first sentence) unless the schema already states the
    allowed values (enum, const, boolean): they tell a small model what to put there.
    """
    return [
        tool.model_copy(
            update={
                "description": first_sentence(tool.description) if tool.description else None,
                "input_schema": _slim_schema(tool.input_schema, top=True),
            }
        )
        for tool in tools
    ]
