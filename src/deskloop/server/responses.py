"""Neutral output events → one Message, or → the documented SSE event sequence."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from deskloop.engines.base import (
    Finish,
    OutputEvent,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    ToolCallEnd,
    ToolCallStart,
    ToolInputDelta,
    Usage,
)


@dataclass(frozen=True)
class TokenCount:
    """A `count_tokens` answer; `saved_by_tool_diet` only when `--tool-diet` is on."""

    input_tokens: int
    saved_by_tool_diet: int | None = None

    def to_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"input_tokens": self.input_tokens}
        if self.saved_by_tool_diet is not None:
            # Not an Anthropic field; clients ignore keys they do not know.
            answer["tool_diet_saved_tokens"] = self.saved_by_tool_diet
        return answer


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
    }


def message_shell(message_id: str, model: str, usage: Usage) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage_json(usage),
    }


async def collect_message(
    first: Usage, events: AsyncIterator[OutputEvent], *, model: str
) -> dict[str, Any]:
    """The non-streaming answer. A tool call cut off before its end is left out."""
    message = message_shell(new_message_id(), model, first)
    content: list[dict[str, Any]] = message["content"]
    usage = first
    finish = Finish("end_turn")
    pending_call: dict[str, Any] | None = None
    async for event in events:
        if isinstance(event, TextDelta):
            if content and content[-1]["type"] == "text":
                content[-1]["text"] += event.text
            elif event.text:
                content.append({"type": "text", "text": event.text})
        elif isinstance(event, ThinkingDelta):
            if content and content[-1]["type"] == "thinking":
                content[-1]["thinking"] += event.thinking
            else:
                content.append({"type": "thinking", "thinking": event.thinking, "signature": ""})
        elif isinstance(event, ThinkingSignature):
            if content and content[-1]["type"] == "thinking":
                content[-1]["signature"] = event.signature
        elif isinstance(event, ToolCallStart):
            pending_call = {"type": "tool_use", "id": event.id, "name": event.name, "input": {}}
        elif isinstance(event, ToolCallEnd) and pending_call is not None:
            pending_call["input"] = event.input
            content.append(pending_call)
            pending_call = None
        elif isinstance(event, Usage):
            usage = event
        elif isinstance(event, Finish):
            finish = event
    message["stop_reason"] = finish.stop_reason
    message["stop_sequence"] = finish.stop_sequence
    message["usage"] = usage_json(usage)
    return message


def sse(event_type: str, data: dict[str, Any]) -> bytes:
    return f"event: {event_type}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


PING = sse("ping", {"type": "ping"})


class SSEWriter:
    """Keeps block indexes: a block's `index` is its position in the final content."""

    def __init__(self, model: str):
        self.model = model
        self._index = -1
        self._open: str | None = None  # "text" | "thinking" | "tool_use"
        self._usage = Usage(input_tokens=0)
        self._finish = Finish("end_turn")

    def start(self, usage: Usage) -> list[bytes]:
        self._usage = usage
        shell = message_shell(new_message_id(), self.model, usage)
        return [sse("message_start", {"type": "message_start", "message": shell}), PING]

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        self._open = None
        return [sse("content_block_stop", {"type": "content_block_stop", "index": self._index})]

    def _open_block(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self._index += 1
        self._open = kind
        out.append(
            sse(
                "content_block_start",
                {"type": "content_block_start", "index": self._index, "content_block": block},
            )
        )
        return out

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": self._index, "delta": delta},
        )

    def event(self, event: OutputEvent) -> list[bytes]:
        out: list[bytes] = []
        if isinstance(event, TextDelta):
            if not event.text:
                return out
            if self._open != "text":
                out += self._open_block("text", {"type": "text", "text": ""})
            out.append(self._delta({"type": "text_delta", "text": event.text}))
        elif isinstance(event, ThinkingDelta):
            if self._open != "thinking":
                out += self._open_block(
                    "thinking", {"type": "thinking", "thinking": "", "signature": ""}
                )
            out.append(self._delta({"type": "thinking_delta", "thinking": event.thinking}))
        elif isinstance(event, ThinkingSignature):
            if self._open == "thinking":
                out.append(self._delta({"type": "signature_delta", "signature": event.signature}))
        elif isinstance(event, ToolCallStart):
            block = {"type": "tool_use", "id": event.id, "name": event.name, "input": {}}
            out += self._open_block("tool_use", block)
        elif isinstance(event, ToolInputDelta):
            if self._open == "tool_use" and event.partial_json:
                out.append(
                    self._delta({"type": "input_json_delta", "partial_json": event.partial_json})
                )
        elif isinstance(event, ToolCallEnd):
            out += self._close()
        elif isinstance(event, Usage):
            self._usage = event
        elif isinstance(event, Finish):
            self._finish = event
        return out

    def end(self) -> list[bytes]:
        out = self._close()
        out.append(
            sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": self._finish.stop_reason,
                        "stop_sequence": self._finish.stop_sequence,
                    },
                    "usage": usage_json(self._usage),
                },
            )
        )
        out.append(sse("message_stop", {"type": "message_stop"}))
        return out

    def ping(self) -> bytes:
        return PING

    def error(self, envelope: dict[str, Any]) -> list[bytes]:
        return [sse("error", envelope)]
