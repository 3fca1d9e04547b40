"""A streaming parser for the families whose calls are JSON objects with a name and arguments.

Hermes, the generic format, Llama 3 and Mistral differ only in the markers around the
objects, so one parser serves them: text flows out until an opener, the call object is
scanned character by character (braces inside strings do not count), and the
arguments stream as they arrive once the tool's name is known.
"""

from __future__ import annotations

import json
from typing import Any

from deskloop.server.protocol import Tool
from deskloop.server.tool_formats._text import WHITESPACE, TextSink, partial_suffix
from deskloop.server.tool_formats.base import (
    ParsedCallEnd,
    ParsedCallInvalid,
    ParsedCallStart,
    ParsedEvent,
    ParsedInputDelta,
    ToolCallParser,
)
from deskloop.server.tool_schema import repair_json, validate_input


class ObjectScanner:
    """Follows one JSON object as it arrives and records where its top-level values lie.

    The text is kept in pieces (a long call, like a file's content, would cost quadratic
    time as one growing string); `slice` near the end is cheap, which is where streaming reads.
    """

    def __init__(self) -> None:
        self.length = 0
        self.done = False
        self.broken = False  # not a JSON object after all
        self.fields: dict[str, tuple[int, int]] = {}  # key -> span of its value in the text
        self.key = ""  # the key whose value is being read
        self.value_start = -1
        self._parts: list[str] = []
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self._expect = "open"  # open|key|colon|value|nested|scalar|string|after
        self._key_chars: list[str] = []
        self._string_is_key = False

    @property
    def raw(self) -> str:
        joined = "".join(self._parts)
        self._parts = [joined] if joined else []
        return joined

    def slice(self, start: int, end: int) -> str:
        """The text from `start` to `end`."""
        pieces: list[str] = []
        part_end = self.length
        for part in reversed(self._parts):
            part_start = part_end - len(part)
            if part_start < end:
                pieces.append(part[max(start - part_start, 0) : end - part_start])
            if part_start <= start:
                break
            part_end = part_start
        return "".join(reversed(pieces))

    def push_text(self, text: str) -> int:
        """Read `text` until the object ends (or turns out not to be one); returns chars used."""
        used = 0
        for char in text:
            self._push(char, self.length + used)
            used += 1
            if self.done or self.broken:
                break
        self._parts.append(text[:used])
        self.length += used
        return used

    def _push(self, char: str, index: int) -> None:
        if self._in_string:
            if self._string_is_key:
                self._key_chars.append(char)
            if self._escaped:
                self._escaped = False
            elif char == "\\":
                self._escaped = True
            elif char == '"':
                self._in_string = False
                if self._depth == 1:
                    self._close_top_string(index)
            return
        if self._expect == "open":
            if char == "{":
                self._depth, self._expect = 1, "key"
            elif char not in WHITESPACE:
                self.broken = True
            return
        if char == '"':
            self._in_string = True
            self._string_is_key = False
            if self._depth == 1 and self._expect == "key":
                self._key_chars, self._string_is_key = ['"'], True
            elif self._depth == 1 and self._expect == "value":
                self.value_start, self._expect = index, "string"
        elif char in "{[":
            if self._depth == 1 and self._expect == "value":
                self.value_start, self._expect = index, "nested"
            self._depth += 1
        elif char in "}]":
            self._depth -= 1
            if self._depth == 1 and self._expect == "nested":
                self._end_value(index + 1)
            elif self._depth == 0:
                if self._expect == "scalar":
                    self._end_value(index)
                self.done = True
        elif self._depth == 1:
            if char == ":" and self._expect == "colon":
                self._expect = "value"
            elif char == ",":
                if self._expect == "scalar":
                    self._end_value(index)
                self._expect = "key"
            elif char not in WHITESPACE and self._expect == "value":
                self.value_start, self._expect = index, "scalar"

    def _close_top_string(self, index: int) -> None:
        if self._string_is_key:
            try:
                self.key = str(json.loads("".join(self._key_chars)))
            except json.JSONDecodeError:
                self.key = ""
            self._expect = "colon"
        elif self._expect == "string":
            self._end_value(index + 1)

    def _end_value(self, end: int) -> None:
        self.fields.setdefault(self.key, (self.value_start, end))
        self._expect = "after"

    def value(self, key: str) -> Any:
        """The decoded value of a complete top-level field, or None."""
        span = self.fields.get(key)
        if span is None:
            return None
        try:
            return json.loads(self.slice(*span))
        except json.JSONDecodeError:
            return None

    def reading_nested(self) -> bool:
        return self._expect == "nested"


class JsonCallParser(ToolCallParser):
    """Text and calls for one response; see the module docstring."""

    def __init__(
        self,
        tools: list[Tool],
        *,
        opener: str,
        closer: str = "",
        argument_keys: tuple[str, ...] = ("arguments",),
        array_body: bool = False,
        name_marker: str = "",
        bare_object_at_start: bool = False,
        guided: bool = False,
    ):
        self.tools = {tool.name: tool for tool in tools}
        self.opener = opener
        self.closer = closer
        self.argument_keys = argument_keys
        self.array_body = array_body
        # `opener NAME name_marker {arguments}` (Mistral tokenizer v11+) besides the array form.
        self.name_marker = name_marker
        self.guided = guided
        self._state = "start" if bare_object_at_start else "text"
        self._held = ""  # text not yet decided (maybe the start of a marker)
        self._scanner: ObjectScanner | None = None
        self._named = ""  # the tool's name when it came before the arguments object
        self._opened_with = ""
        self._started = False
        self._name_checked = False
        self._arguments_start = -1
        self._sent = 0  # how much of the arguments' raw text has streamed
        self._events: list[ParsedEvent] = []
        self._text = TextSink(self._events)

    def _enter_call(self, opened_with: str) -> None:
        self._text.call_opened()
        self._opened_with = opened_with
        self._state = "array" if self.array_body else "object"
        self._scanner = ObjectScanner()
        self._named = ""
        self._started = False
        self._name_checked = False
        self._arguments_start = -1
        self._sent = 0

    # -- feeding -------------------------------------------------------------------

    def feed(self, text: str) -> list[ParsedEvent]:
        self._held += text
        self._run(final=False)
        return self._drain()

    def _drain(self) -> list[ParsedEvent]:
        events = list(self._events)
        self._events.clear()
        return events

    def finish(self) -> list[ParsedEvent]:
        self._run(final=True)
        if self._state in ("object", "array", "named") and self._scanner is not None:
            raw = self._opened_with + self._scanner.raw + self._held
            self._events.append(ParsedCallInvalid(raw, "the output ended inside a tool call"))
        elif self._state in ("unparsable", "array"):
            self._text.call_closed()
            self._events.append(
                ParsedCallInvalid(self._opened_with + self._held, "the call is not a JSON object")
            )
        elif self._state == "closing" and self.closer.startswith(self._held.strip()):
            pass  # a closer cut short: nothing to show
        else:
            self._text.add(self._held)
        self._held = ""
        self._text.finish()
        return self._drain()

    def _run(self, *, final: bool) -> None:
        while self._held:
            before = (self._state, len(self._held))
            step = getattr(self, f"_step_{self._state}")
            step(final)
            if (self._state, len(self._held)) == before:
                return

    def _step_start(self, final: bool) -> None:
        stripped = self._held.lstrip(WHITESPACE)
        if not stripped:
            return
        if stripped.startswith("{"):
            self._held = stripped
            self._enter_call("")
        else:
            self._state = "text"

    def _step_text(self, final: bool) -> None:
        at = self._held.find(self.opener)
        if at >= 0:
            self._text.add(self._held[:at])
            self._held = self._held[at + len(self.opener) :]
            self._enter_call(self.opener)
            return
        keep = 0 if final else partial_suffix(self._held, self.opener)
        cut = len(self._held) - keep
        if cut:
            self._text.add(self._held[:cut])
            self._held = self._held[cut:]

    def _step_array(self, final: bool) -> None:
        stripped = self._held.lstrip(WHITESPACE)
        if not stripped:
            return  # kept: it belongs to the raw text if this turns out not to be a call
        if stripped[0] == "[":
            self._opened_with += self._held[: len(self._held) - len(stripped) + 1]
            self._held = stripped[1:]
            self._state = "object"
        elif self.name_marker and stripped[0] != "{":
            self._state = "named"
        else:
            self._state = "unparsable"

    def _step_named(self, final: bool) -> None:
        at = self._held.find(self.name_marker)
        if at < 0:
            if final or len(self._held) > 200:  # no tool name is that long
                self._state = "unparsable"
            return
        self._named = self._held[:at].strip()
        self._opened_with += self._held[: at + len(self.name_marker)]
        self._held = self._held[at + len(self.name_marker) :]
        self._state = "object"

    def _step_object(self, final: bool) -> None:
        scanner = self._scanner
        assert scanner is not None
        used = scanner.push_text(self._held)
        self._held = self._held[used:]
        if scanner.broken:
            self._held = scanner.raw + self._held
            self._state = "unparsable"
            return
        self._stream_arguments(scanner)
        if scanner.done:
            self._end_call(scanner)
            self._state = "array_next" if self.array_body and not self._named else "closing"

    def _step_array_next(self, final: bool) -> None:
        stripped = self._held.lstrip(WHITESPACE)
        if not stripped:
            self._held = ""
            return
        if stripped[0] == ",":
            self._held = stripped[1:]
            self._scanner = ObjectScanner()
            self._started, self._name_checked, self._sent = False, False, 0
            self._arguments_start = -1
            self._state = "object"
        elif stripped[0] == "]":
            self._held = stripped[1:]
            self._state = "text"
        else:
            self._held = stripped
            self._state = "text"

    def _step_closing(self, final: bool) -> None:
        stripped = self._held.lstrip(WHITESPACE)
        if not self.closer:
            self._held = stripped
            self._state = "text"
            return
        if stripped.startswith(self.closer):
            self._held = stripped[len(self.closer) :]
            self._state = "text"
        elif self.closer.startswith(stripped) and not final:
            return  # maybe the closer, still arriving
        else:
            self._held = stripped
            self._state = "text"

    def _step_unparsable(self, final: bool) -> None:
        at = self._held.find(self.closer) if self.closer else -1
        if at < 0:
            return  # the call's text runs to the end of the output
        raw = self._opened_with + self._held[: at + len(self.closer)]
        self._held = self._held[at + len(self.closer) :]
        self._text.call_closed()
        self._events.append(ParsedCallInvalid(raw, "the call is not a JSON object"))
        self._state = "text"

    # -- calls ---------------------------------------------------------------------

    def _arguments_span_start(self, scanner: ObjectScanner) -> int:
        """Where the arguments object starts in the scanner's text, or -1 if not (yet) known."""
        for key in self.argument_keys:
            span = scanner.fields.get(key)
            if span is not None:
                return span[0] if scanner.slice(span[0], span[0] + 1) == "{" else -1
        if scanner.key in self.argument_keys and scanner.reading_nested():
            start = scanner.value_start
            return start if scanner.slice(start, start + 1) == "{" else -1
        return -1

    def _stream_arguments(self, scanner: ObjectScanner) -> None:
        if not self.guided:
            return
        if self._named:
            if not self._started:
                if self._named not in self.tools:
                    return
                self._events.append(ParsedCallStart(self._named))
                self._started = True
            self._arguments_start = 0  # the object is the arguments
        elif not self._started:
            if self._name_checked or "name" not in scanner.fields:
                return
            self._name_checked = True  # decided once: a long undeclared call is not re-read
            name = scanner.value("name")
            if not isinstance(name, str) or name not in self.tools:
                return
            self._events.append(ParsedCallStart(name))
            self._started = True
        if self._arguments_start < 0:
            # Found once; looking again every piece would re-walk the whole call.
            self._arguments_start = self._arguments_span_start(scanner)
        start = self._arguments_start
        if start < 0:
            return
        end = scanner.length
        for key in () if self._named else self.argument_keys:
            if key in scanner.fields:
                end = scanner.fields[key][1]
                break
        begin = max(start, self._sent)
        if end > begin:
            self._events.append(ParsedInputDelta(scanner.slice(begin, end)))
            self._sent = end

    def _end_call(self, scanner: ObjectScanner) -> None:
        raw = self._opened_with + scanner.raw
        name, tool_input, problem = self._read_call(scanner)
        self._text.call_closed()
        if problem is not None or name is None or tool_input is None:
            self._events.append(ParsedCallInvalid(raw, problem or "no tool name"))
            return
        if not self._started:
            self._events.append(ParsedCallStart(name))
            self._events.append(ParsedInputDelta(json.dumps(tool_input, ensure_ascii=False)))
        elif self._sent == 0:
            # Guided, but the arguments were not an object literal (or came before the name).
            self._events.append(ParsedInputDelta(json.dumps(tool_input, ensure_ascii=False)))
        self._events.append(ParsedCallEnd(tool_input))

    def _read_call(
        self, scanner: ObjectScanner
    ) -> tuple[str | None, dict[str, Any] | None, str | None]:
        try:
            call = json.loads(scanner.raw)
        except json.JSONDecodeError:
            call = None if self.guided else repair_json(scanner.raw)
        if self._named and isinstance(call, dict):
            call = {"name": self._named, self.argument_keys[0]: call}
        if not isinstance(call, dict):
            return None, None, "the call is not valid JSON"
        name = call.get("name")
        if not isinstance(name, str):
            return None, None, "the call has no tool name"
        tool = self.tools.get(name)
        if tool is None:
            return name, None, f"{name!r} is not one of the declared tools"
        arguments: Any = {}
        for key in self.argument_keys:
            if key in call:
                arguments = call[key]
                break
        if isinstance(arguments, str) and not self._started:
            # Some models write the arguments as a JSON string (OpenAI's wire habit).
            decoded = repair_json(arguments)
            arguments = decoded if decoded is not None else arguments
        problem = validate_input(tool, arguments)
        if problem is not None:
            return name, None, problem
        if self._started and self._sent and self._streamed_text(scanner) is None:
            return name, None, "the streamed arguments do not parse"
        return name, arguments, None

    def _streamed_text(self, scanner: ObjectScanner) -> str | None:
        if self._named:
            return scanner.raw
        for key in self.argument_keys:
            span = scanner.fields.get(key)
            if span is not None:
                return scanner.slice(*span)
        return None
