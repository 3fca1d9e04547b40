"""One registry for native, screen and MCP tools: names, schemas and what they cost in tokens."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema
from jsonschema.protocols import Validator

from deskloop.errors import DeskloopError
from deskloop.tools.contract import RISK_CLASSES, TOOL_NAME_PATTERN, Tool

TokenCounter = Callable[[str], int]

# Words, numbers and single punctuation marks: close to what a BPE tokenizer makes of JSON.
_TOKEN_PIECES = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")


class ToolRegistrationError(DeskloopError):
    """A tool that cannot be offered to the model as defined; the message says what to fix."""


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate of the tokens in `text` (words, numbers, punctuation marks)."""
    return len(_TOKEN_PIECES.findall(text))


@dataclass(frozen=True)
class ToolCost:
    name: str
    source: str
    tokens: int


class ToolRegistry:
    """The tools of one session, by name, each with its input validator compiled once."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._validators: dict[str, Validator] = {}
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        if not TOOL_NAME_PATTERN.match(tool.name):
            raise ToolRegistrationError(
                f"tool name {tool.name!r} must be 1-64 letters, digits, '_' or '-'"
            )
        if tool.name in self._tools:
            other = self._tools[tool.name].source
            raise ToolRegistrationError(
                f"tool {tool.name!r} from {tool.source} clashes with the one from {other}; "
                "rename one of them"
            )
        if tool.risk not in RISK_CLASSES:
            raise ToolRegistrationError(
                f"tool {tool.name!r} has risk class {tool.risk!r}; use one of {RISK_CLASSES}"
            )
        self._validators[tool.name] = _compile_schema(tool)
        self._tools[tool.name] = tool

    def add_each(self, tools: Iterable[Tool]) -> list[ToolRegistrationError]:
        """Add what can be added (third-party tools); returns why the others were left out."""
        refused = []
        for tool in tools:
            try:
                self.add(tool)
            except ToolRegistrationError as exc:
                refused.append(exc)
        return refused

    def remove_source(self, source: str) -> list[str]:
        """Drop every tool from `source` (an MCP server switched off); returns their names."""
        names = [name for name, tool in self._tools.items() if tool.source == source]
        for name in names:
            del self._tools[name]
            del self._validators[name]
        return names

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def validator(self, name: str) -> Validator:
        return self._validators[name]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return list(self._tools)

    def definitions(self) -> list[dict[str, Any]]:
        """The `tools` list of a Messages API request, in registration order."""
        return [tool.definition() for tool in self._tools.values()]

    def schema_costs(self, count: TokenCounter = estimate_tokens) -> list[ToolCost]:
        """What each tool's definition adds to every request, counted by `count`."""
        return [
            ToolCost(tool.name, tool.source, count(json.dumps(tool.definition())))
            for tool in self._tools.values()
        ]


def _compile_schema(tool: Tool) -> Validator:
    schema = tool.input_schema
    if schema.get("type") != "object":
        raise ToolRegistrationError(
            f'tool {tool.name!r}: input_schema must have "type": "object" (Messages API rule)'
        )
    validator_class = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ToolRegistrationError(
            f"tool {tool.name!r} has an invalid input_schema: {exc.message}"
        ) from exc
    validator: Validator = validator_class(schema)
    return validator
