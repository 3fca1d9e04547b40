"""Translation between Anthropic Messages and OpenAI Chat Completions, both ways.

`chat_completion_body` turns a Messages request into a streaming chat-completions body;
`ChunkTranslator` turns the streamed chunks back into neutral output events.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from deskloop.engines.base import (
    Finish,
    OutputEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolInputDelta,
    Usage,
)

# Claude Code's per-request billing line; it changes every time and defeats prefix caches
# upstream (vLLM, llama.cpp) exactly as it does ours (PROTOCOL-NOTES.md).
BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"

FINISH_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "end_turn",
}


def chat_completion_body(request: dict[str, Any], model: str) -> dict[str, Any]:
    """The streaming `/v1/chat/completions` body for a validated Messages request."""
    body: dict[str, Any] = {
        "model": request.get("model") or model,
        "messages": chat_messages(request),
        "max_tokens": request["max_tokens"],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    # `is not None`, never `or`: temperature 0 must stay 0 (PROTOCOL-NOTES.md).
    for name in ("temperature", "top_p", "top_k"):
        if request.get(name) is not None:
            body[name] = request[name]  # top_k is an extra field vLLM and llama.cpp accept
    if request.get("stop_sequences"):
        body["stop"] = list(request["stop_sequences"])
    tools = request.get("tools") or []
    choice = request.get("tool_choice")
    if tools:
        body["tools"] = [chat_tool(tool) for tool in tools]
        if choice:  # OpenAI refuses tool_choice without tools
            body["tool_choice"] = chat_tool_choice(choice)
            if choice.get("disable_parallel_tool_use"):
                body["parallel_tool_calls"] = False
    last = body["messages"][-1] if body["messages"] else {}
    if last.get("role") == "assistant" and "tool_calls" not in last:
        # A prefilled answer to continue: vLLM's extra parameters for it (its chat API
        # docs); llama.cpp continues a final assistant message by itself.
        body["continue_final_message"] = True
        body["add_generation_prompt"] = False
    return body


def chat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool["name"], "parameters": tool["input_schema"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def chat_tool_choice(choice: dict[str, Any]) -> str | dict[str, Any]:
    kind = choice["type"]
    if kind == "any":
        return "required"
    if kind == "tool":
        return {"type": "function", "function": {"name": choice["name"]}}
    return str(kind)  # "auto" and "none" are spelled the same


def chat_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    """System prompt and conversation as chat messages; thinking blocks are dropped."""
    messages: list[dict[str, Any]] = []
    system = system_text(request.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for message in request["messages"]:
        role = message["role"]
        blocks = content_blocks(message["content"])
        if role == "system":
            text = system_text(blocks)
            if text:
                messages.append({"role": "system", "content": text})
        elif role == "assistant":
            assistant = assistant_message(blocks)
            if assistant is not None:
                messages.append(assistant)
        else:
            messages.extend(user_messages(blocks))
    return messages


def folded_system_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All system text in one leading system message; the user turns it split are joined."""
    system = [m["content"] for m in messages if m["role"] == "system"]
    folded: list[dict[str, Any]] = [{"role": "system", "content": "\n\n".join(system)}]
    for message in messages:
        if message["role"] == "system":
            continue
        previous = folded[-1]
        if message["role"] == "user" == previous["role"]:
            folded[-1] = {"role": "user", "content": joined_content(previous, message)}
        else:
            folded.append(message)
    return folded if system else folded[1:]


def joined_content(first: dict[str, Any], second: dict[str, Any]) -> str | list[dict[str, Any]]:
    a, b = first["content"], second["content"]
    if isinstance(a, str) and isinstance(b, str):
        return f"{a}\n\n{b}"
    as_parts = [[{"type": "text", "text": c}] if isinstance(c, str) else c for c in (a, b)]
    return as_parts[0] + as_parts[1]


def content_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return content


def system_text(system: str | list[dict[str, Any]] | None) -> str:
    """System text without Claude Code's billing line; `cache_control` is left behind."""
    if not system:
        return ""
    blocks = content_blocks(system)
    lines = [
        block["text"]
        for block in blocks
        if block.get("type") == "text" and not block["text"].startswith(BILLING_HEADER_PREFIX)
    ]
    return "\n\n".join(line for line in lines if line)


def assistant_message(blocks: list[dict[str, Any]]) -> dict[str, Any] | None:
    text = "".join(block["text"] for block in blocks if block["type"] == "text")
    tool_calls = [
        {
            "id": block["id"],
            "type": "function",
            "function": {"name": block["name"], "arguments": json.dumps(block["input"])},
        }
        for block in blocks
        if block["type"] == "tool_use"
    ]
    if not text and not tool_calls:
        return None  # a turn of thinking only: nothing an OpenAI server can take
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    else:
        message["content"] = text
    return message


def user_messages(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool results first (they must follow the assistant's tool_calls), then the rest."""
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in blocks:
        if block["type"] == "tool_result":
            text, images = tool_result_content(block)
            tool_call_id = block["tool_use_id"]
            tool_messages.append({"role": "tool", "tool_call_id": tool_call_id, "content": text})
            parts.extend(images)
        else:
            part = user_part(block)
            if part is not None:
                parts.append(part)
    messages = tool_messages
    if parts:
        messages.append({"role": "user", "content": user_content(parts)})
    return messages


def user_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    # Plain text goes as a string: several servers (llama-cpp-python's chat formats among
    # them) render a list of parts literally into the prompt.
    if all(part["type"] == "text" for part in parts):
        return "\n\n".join(part["text"] for part in parts)
    return parts


def user_part(block: dict[str, Any]) -> dict[str, Any] | None:
    kind = block["type"]
    if kind == "text":
        return {"type": "text", "text": block["text"]}
    if kind == "image":
        return image_part(block["source"])
    if kind == "document":
        return {"type": "text", "text": document_text(block)}
    return None  # thinking and redacted_thinking have no place in a user turn


def image_part(source: dict[str, Any]) -> dict[str, Any]:
    if source.get("type") == "url":
        url = source["url"]
    else:
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    return {"type": "image_url", "image_url": {"url": url}}


def document_text(block: dict[str, Any]) -> str:
    source = block.get("source", {})
    if source.get("type") == "text" and isinstance(source.get("data"), str):
        return str(source["data"])
    return f"[document: {block.get('title') or 'attached'}]"


def tool_result_content(block: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """A tool result's text for the `tool` message, and its images for a user message."""
    content = block.get("content")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for item in content_blocks(content) if content else []:
        if item["type"] == "image":
            images.append(image_part(item["source"]))
            texts.append("[image attached below]")
        elif item["type"] == "document":
            texts.append(document_text(item))
        else:
            texts.append(item.get("text", ""))
    text = "\n".join(texts)
    if block.get("is_error"):
        # Chat completions have no error flag on tool messages; the model reads it instead.
        text = f"Error: {text}" if text else "Error"
    return text, images


def parse_tool_arguments(arguments: str) -> dict[str, Any]:
    """The best reading of streamed tool arguments; `{}` when nothing can be salvaged.

    The raw text is what the `ToolInputDelta` events carried, so the server can repair
    it against the tool's schema.
    """
    text = arguments.strip()
    if not text:
        return {}
    for candidate in (text, close_json(text)):
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def close_json(text: str) -> str:
    """Close the strings, objects and arrays a cut-off JSON text left open."""
    closers: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            closers.append("}" if char == "{" else "]")
        elif char in "}]" and closers:
            closers.pop()
    tail = '"' if in_string else ""
    return text.rstrip(",") + tail + "".join(reversed(closers))


@dataclass
class _ToolCall:
    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""
    started: bool = False
    ended: bool = False


@dataclass
class ChunkTranslator:
    """Turns streamed chat-completion chunks into neutral output events.

    Tool calls arrive by `index`: id and name first, arguments in pieces. A call is
    started once its name is known and ended when another block begins or the stream ends.
    """

    stop_sequences: list[str] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    matched_stop: str | None = None
    content_chunks: int = 0
    _calls: dict[int, _ToolCall] = field(default_factory=dict)
    _open_call: _ToolCall | None = None

    def feed(self, chunk: dict[str, Any]) -> list[OutputEvent]:
        events: list[OutputEvent] = []
        if chunk.get("usage"):
            self.usage = usage_from(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue  # n > 1 is never asked for
            events.extend(self._delta(choice.get("delta") or {}))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
                # vLLM names the matched stop string in `stop_reason` (an int for a stop token).
                stop_reason = choice.get("stop_reason")
                if isinstance(stop_reason, str) and stop_reason in self.stop_sequences:
                    self.matched_stop = stop_reason
        return events

    def _delta(self, delta: dict[str, Any]) -> list[OutputEvent]:
        events: list[OutputEvent] = []
        # vLLM before 0.10 and DeepSeek say `reasoning_content`; newer vLLM and Ollama `reasoning`.
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            events.extend(self._close_call())
            events.append(ThinkingDelta(reasoning))
            self.content_chunks += 1
        content = delta.get("content")
        if isinstance(content, str) and content:
            events.extend(self._close_call())
            events.append(TextDelta(content))
            self.content_chunks += 1
        for piece in delta.get("tool_calls") or []:
            events.extend(self._tool_piece(piece))
            self.content_chunks += 1
        return events

    def _tool_piece(self, piece: dict[str, Any]) -> list[OutputEvent]:
        function = piece.get("function") or {}
        index = self._index_of(piece, function)
        call = self._calls.setdefault(index, _ToolCall(index))
        # The name comes whole in one piece; some servers repeat it in every piece.
        call.id = call.id or str(piece.get("id") or "")
        call.name = call.name or str(function.get("name") or "")
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # Ollama sends an object instead of a JSON string
            arguments = json.dumps(arguments)
        new_arguments = arguments if isinstance(arguments, str) else ""
        call.arguments += new_arguments
        if call.ended or not call.name:
            # Arguments before the name are held until it comes; OpenAI never interleaves
            # calls, so a late piece of a closed call is kept in `arguments` only.
            return []
        if call.started:
            return [ToolInputDelta(new_arguments)] if new_arguments else []
        events = self._close_call()
        call.id = call.id or f"toolu_{uuid.uuid4().hex[:24]}"
        call.started = True
        self._open_call = call
        events.append(ToolCallStart(call.id, call.name))
        if call.arguments:
            events.append(ToolInputDelta(call.arguments))
        return events

    def _index_of(self, piece: dict[str, Any], function: dict[str, Any]) -> int:
        if isinstance(piece.get("index"), int):
            return int(piece["index"])
        # Without an index (older Ollama): a new id or name starts a call, the rest continue one.
        if piece.get("id") or function.get("name") or not self._calls:
            return len(self._calls)
        return max(self._calls)

    def _close_call(self) -> list[OutputEvent]:
        call = self._open_call
        if call is None:
            return []
        self._open_call = None
        call.ended = True
        return [ToolCallEnd(parse_tool_arguments(call.arguments))]

    def finish(self) -> list[OutputEvent]:
        """Close what is open, then the final usage and stop reason."""
        events = self._close_call()
        # Without upstream usage, one chunk is close to one token on every server seen.
        events.append(self.usage or Usage(input_tokens=0, output_tokens=self.content_chunks))
        events.append(self.final_finish())
        return events

    def final_finish(self) -> Finish:
        if self.matched_stop is not None:
            return Finish("stop_sequence", self.matched_stop)
        reason = FINISH_REASONS.get(self.finish_reason or "stop", "end_turn")
        if reason == "end_turn" and any(call.started for call in self._calls.values()):
            reason = "tool_use"  # Ollama and others finish a tool call with "stop"
        return Finish(reason)


def usage_from(usage: dict[str, Any]) -> Usage:
    """OpenAI usage as Anthropic counts it: cached prompt tokens are not input tokens."""
    prompt = int(usage.get("prompt_tokens") or 0)
    details = usage.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    return Usage(
        input_tokens=max(prompt - cached, 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        cache_read_input_tokens=cached,
    )
