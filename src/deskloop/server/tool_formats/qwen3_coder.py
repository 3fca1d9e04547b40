"""Qwen3-Coder: XML calls, one `<parameter=NAME>` element per argument.

    <tool_call>
    <function=click>
    <parameter=element_id>
    e12
    </parameter>
    </function>
    </tool_call>

Values are raw text: strings as written, everything else as JSON. The input streams as
JSON built from the parameters: string values character by character, others whole.
"""

from __future__ import annotations

import json
from typing import Any

from deskloop.server.protocol import Tool
from deskloop.server.tool_formats._grammar import (
    input_schema,
    json_rule,
    json_schema_with_style,
    ordered_properties,
    pattern_regex,
    with_definitions,
)
from deskloop.server.tool_formats._stepwise import StepwiseParser
from deskloop.server.tool_formats._text import partial_suffix
from deskloop.server.tool_formats.base import (
    MarkerSyntax,
    ParsedCallEnd,
    ParsedCallInvalid,
    ParsedCallStart,
    ParsedInputDelta,
    ToolCallParser,
    ToolFormat,
    ValueChoice,
    lark_string,
    small_enums,
)
from deskloop.server.tool_schema import validate_input

OPENER = "<tool_call>"
CLOSER = "</tool_call>"
FUNCTION_END = "</function>"
PARAMETER_END = "\n</parameter>"


def _is_string_schema(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    if schema.get("type") == "string":
        return True
    values = schema.get("enum")
    return isinstance(values, list) and bool(values) and all(isinstance(v, str) for v in values)


def parameter_value(raw: str, schema: Any) -> Any:
    """The argument a parameter's raw text stands for, read as its schema's type."""
    if _is_string_schema(schema):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


class Qwen3CoderParser(StepwiseParser):
    """Text, then `<tool_call>` blocks of XML parameters; see the module docstring."""

    opener = OPENER
    closer = CLOSER
    first_call_state = "function"  # then params, value, closing
    call_states = frozenset({"function", "params", "value", "lost"})

    def _begin_call(self) -> None:
        self._tool: Tool | None = None
        self._values: dict[str, Any] = {}
        self._parameter = ""
        self._value = ""
        self._value_started = False
        self._streaming_string = False
        self._json_started = False
        self._started = False

    def _step_function(self, final: bool) -> None:
        stripped = self._held.lstrip()
        if not stripped.startswith("<function="[: len(stripped)]):
            self._invalid("the call has no <function=...> element")
            return
        end = stripped.find(">")
        if end < 0:
            return
        self._take(len(self._held) - len(stripped) + end + 1)
        name = stripped[len("<function=") : end].strip()
        tool = self.tools.get(name)
        if tool is None:
            self._invalid(f"{name!r} is not one of the declared tools")
            return
        self._tool = tool
        if self.guided:
            self._events.append(ParsedCallStart(name))
            self._started = True
        self._state = "params"

    def _step_params(self, final: bool) -> None:
        stripped = self._held.lstrip()
        if stripped.startswith(FUNCTION_END):
            self._take(len(self._held) - len(stripped) + len(FUNCTION_END))
            self._end_call()
            return
        if stripped.startswith("<parameter="):
            end = stripped.find(">")
            if end < 0:
                return
            self._take(len(self._held) - len(stripped) + end + 1)
            self._parameter = stripped[len("<parameter=") : end].strip()
            self._value, self._value_started = "", False
            self._begin_value()
            self._state = "value"
            return
        if not (FUNCTION_END.startswith(stripped) or "<parameter=".startswith(stripped)):
            self._invalid("unexpected text between parameters")

    def _schema_of(self, parameter: str) -> Any:
        assert self._tool is not None
        properties = self._tool.input_schema.get("properties", {})
        return properties.get(parameter) if isinstance(properties, dict) else None

    def _begin_value(self) -> None:
        self._streaming_string = self.guided and _is_string_schema(self._schema_of(self._parameter))
        if not self.guided:
            return
        prefix = ", " if self._json_started else "{"
        self._json_started = True
        opening = '"' if self._streaming_string else ""
        self._events.append(ParsedInputDelta(f"{prefix}{json.dumps(self._parameter)}: {opening}"))

    def _step_value(self, final: bool) -> None:
        if not self._value_started:
            # The template writes a newline after `<parameter=...>`; it is not part of the value.
            if self._held.startswith("\n"):
                self._take(1)
            self._value_started = True
            if not self._held:
                return
        at = self._held.find(PARAMETER_END)
        if at >= 0:
            self._add_value(self._take(at))
            self._take(len(PARAMETER_END))
            self._close_value()
            self._state = "params"
            return
        keep = 0 if final else partial_suffix(self._held, PARAMETER_END)
        self._add_value(self._take(len(self._held) - keep))

    def _add_value(self, piece: str) -> None:
        if not piece:
            return
        self._value += piece
        if self._streaming_string:
            self._events.append(ParsedInputDelta(json.dumps(piece, ensure_ascii=False)[1:-1]))

    def _close_value(self) -> None:
        value = parameter_value(self._value, self._schema_of(self._parameter))
        self._values.setdefault(self._parameter, value)
        if self._streaming_string:
            self._events.append(ParsedInputDelta('"'))
        elif self.guided:
            self._events.append(ParsedInputDelta(json.dumps(value, ensure_ascii=False)))

    def _end_call(self) -> None:
        assert self._tool is not None
        self._text.call_closed()
        problem = validate_input(self._tool, self._values)
        if problem is not None:
            self._invalid(problem, consumed_only=True)
            return
        if self._started:
            self._events.append(ParsedInputDelta("}" if self._json_started else "{}"))
        else:
            self._events.append(ParsedCallStart(self._tool.name))
            self._events.append(ParsedInputDelta(json.dumps(self._values, ensure_ascii=False)))
        self._events.append(ParsedCallEnd(dict(self._values)))
        self._state = "closing"

    def _invalid(self, reason: str, *, consumed_only: bool = False) -> None:
        """Give up on this call; its text up to the closer (or the end) is returned raw."""
        if not consumed_only:
            self._text.call_closed()
        if consumed_only:
            raw = self._raw
        else:
            at = self._held.find(CLOSER)
            if at < 0:
                self._raw += self._held
                self._held = ""
                self._state = "lost"
                return
            raw = self._raw + self._held[: at + len(CLOSER)]
            self._held = self._held[at + len(CLOSER) :]
        self._events.append(ParsedCallInvalid(raw, reason))
        self._state = "closing" if consumed_only else "text"

    def _step_lost(self, final: bool) -> None:
        # Inside a call already given up on: wait for its closer.
        at = self._held.find(CLOSER)
        if at < 0:
            self._raw += self._held
            self._held = ""
            return
        raw = self._raw + self._held[: at + len(CLOSER)]
        self._held = self._held[at + len(CLOSER) :]
        self._events.append(ParsedCallInvalid(raw, "the call is not well formed"))
        self._state = "text"


class Qwen3CoderFormat(ToolFormat):
    name = "qwen3_coder"
    call_opener = OPENER
    closers = (PARAMETER_END, FUNCTION_END, CLOSER)

    def value_choices(self, tools: list[Tool]) -> list[ValueChoice]:
        return [
            ValueChoice(f"<parameter={key}>\n", tuple(values), PARAMETER_END)
            for tool in tools
            for key, values in small_enums(tool.input_schema)
        ]

    def new_parser(self, tools: list[Tool], *, guided: bool = False) -> ToolCallParser:
        return Qwen3CoderParser(tools, guided=guided)

    def write_call(self, name: str, arguments: dict[str, Any]) -> str:
        parameters = "".join(
            f"<parameter={key}>\n"
            f"{value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
            f"{PARAMETER_END}\n"
            for key, value in arguments.items()
        )
        return f"{OPENER}\n<function={name}>\n{parameters}{FUNCTION_END}\n{CLOSER}"

    def call_rules(self, tools: list[Tool], *, parallel: bool, marker: MarkerSyntax) -> str:
        more = f' ("\\n"? {marker(OPENER)} call)*' if parallel else ""
        lines = [
            f"calls: call{more}",
            f'call: "\\n" function "\\n" {marker(CLOSER)}',  # as the template writes it
            "function: " + " | ".join(f"f{index}" for index in range(len(tools))),
        ]
        for index, tool in enumerate(tools):
            lines.extend(_function_rules(index, tool, marker))
        return "\n".join(lines)


def _value_rule(rule: str, schema: Any, root: dict[str, Any]) -> str:
    """Lark rule for a parameter's raw value, ending with the parameter's closing tag."""
    end = lark_string(PARAMETER_END)
    if isinstance(schema, dict) and isinstance(schema.get("enum"), list) and schema["enum"]:
        choices = " | ".join(
            lark_string(v if isinstance(v, str) else json.dumps(v)) for v in schema["enum"]
        )
        return f"{rule}: ({choices}) {end}"
    kind = schema.get("type") if isinstance(schema, dict) else None
    pattern = pattern_regex(schema) if kind == "string" else None
    if pattern is not None:
        return f"{rule}: {pattern} {end}"  # an id's end is forced, not chosen
    if kind == "string":
        # Lazy: the value ends at the first closing tag.
        return f"{rule}[lazy]: /(?s:.*)\\n<\\/parameter>/"
    if kind == "integer":
        return f"{rule}: /-?[0-9]+/ {end}"
    if kind == "number":
        return rf"{rule}: /-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/ {end}"
    if kind == "boolean":
        return f'{rule}: ("true" | "false") {end}'
    if isinstance(schema, dict) and kind in ("object", "array"):
        return f"{rule}: {json_rule(json_schema_with_style(with_definitions(schema, root)))} {end}"
    return f"{rule}[lazy]: /(?s:.*)\\n<\\/parameter>/"


def _function_rules(index: int, tool: Tool, marker: MarkerSyntax) -> list[str]:
    schema = input_schema(tool)
    parts = []
    lines = []
    for number, (name, sub, required) in enumerate(ordered_properties(schema)):
        rule = f"f{index}_p{number}"
        value = f"{rule}_v"
        opening = lark_string(f"<parameter={name}>" + "\n")
        lines.append(f'{rule}: {opening} {value} "\\n"')
        lines.append(_value_rule(value, sub, schema))
        parts.append(rule if required else f"{rule}?")
    head = marker.spelled(tool.name, before="<function=", after=">\n")
    lines.insert(0, f"f{index}: {head} {' '.join(parts)} {lark_string(FUNCTION_END)}")
    return lines
