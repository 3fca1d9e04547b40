"""Ollama's native `/api/chat`, used only for its `format` (a JSON Schema to enforce).

Shapes from Ollama's API docs: options under `options` (`num_predict` for max tokens),
tool-call arguments as objects, images as bare base64 beside the text, and a stream of
JSON lines (NDJSON) ending with one that has `done: true` and the token counts.
"""

from __future__ import annotations

import json
from typing import Any

# Chat-completions sampling fields and their names in Ollama's `options`.
OPTION_NAMES = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "stop": "stop"}


def ollama_chat_body(body: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The `/api/chat` body for a chat-completions body, with `format` set to `schema`."""
    options: dict[str, Any] = {"num_predict": body["max_tokens"]}
    for name, option in OPTION_NAMES.items():
        if body.get(name) is not None:
            options[option] = body[name]
    native: dict[str, Any] = {
        "model": body["model"],
        "messages": [ollama_message(message) for message in body["messages"]],
        "stream": True,
        "format": schema,
        "options": options,
    }
    if body.get("tools"):
        native["tools"] = body["tools"]  # the same function shape as chat completions
    return native


def ollama_message(message: dict[str, Any]) -> dict[str, Any]:
    native: dict[str, Any] = {"role": message["role"]}
    content = message.get("content")
    if isinstance(content, list):
        texts, images = [], []
        for part in content:
            if part.get("type") == "image_url":
                url = str((part.get("image_url") or {}).get("url", ""))
                if url.startswith("data:"):
                    images.append(url.partition(",")[2])
                else:
                    texts.append(f"[image: {url}]")
            else:
                texts.append(str(part.get("text", "")))
        native["content"] = "\n\n".join(texts)
        if images:
            native["images"] = images
    else:
        native["content"] = content or ""
    if message.get("tool_calls"):
        native["tool_calls"] = [
            {"function": {"name": call["function"]["name"], "arguments": _object(call)}}
            for call in message["tool_calls"]
        ]
    return native


def _object(call: dict[str, Any]) -> Any:
    arguments = call["function"].get("arguments")
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except json.JSONDecodeError:
            return {}
    return arguments or {}


def chunk_from_line(line: dict[str, Any]) -> dict[str, Any]:
    """One NDJSON line of `/api/chat` as a chat-completions chunk (what the translator reads)."""
    message = line.get("message") or {}
    delta: dict[str, Any] = {}
    if message.get("content"):
        delta["content"] = message["content"]
    if message.get("thinking"):
        delta["reasoning"] = message["thinking"]
    if message.get("tool_calls"):
        delta["tool_calls"] = [
            {"index": index, "function": call.get("function") or {}}
            for index, call in enumerate(message["tool_calls"])
        ]
    choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": None}
    chunk: dict[str, Any] = {"choices": [choice]}
    if line.get("done"):
        choice["finish_reason"] = line.get("done_reason") or "stop"
        chunk["usage"] = {
            "prompt_tokens": int(line.get("prompt_eval_count") or 0),
            "completion_tokens": int(line.get("eval_count") or 0),
        }
    return chunk
