"""Fake upstreams that answer as vLLM and Ollama do, in the shapes their docs give.

vLLM (docs.vllm.ai, "Structured Outputs", v0.12+): `structured_outputs: {"json": schema}`
and `response_format` json_schema are enforced; `guided_json` was removed in 0.12 and, like
any unknown field, is ignored (vLLM logs "fields were present in the request but ignored").
`/version` answers `{"version": ...}`. Chat answers are `chat.completion` objects, or
`chat.completion.chunk` events over SSE ending with `data: [DONE]`.

Ollama (ollama.com/blog/structured-outputs, docs.ollama.com/api): `/api/chat` takes
`format` (a JSON Schema) and streams JSON lines, the last with `done: true`, `done_reason`
and the token counts; `/api/version` answers `{"version": ...}`.

The answer to an enforced request is the recorded `call` (what the constrained model
wrote); the answer to anything else is the recorded free text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

PROBE_ANSWER = '{"probe": "ok-31"}'


def completion(
    content: str | None, tool_calls: list[dict[str, Any]] | None = None, prompt_tokens: int = 31
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": content,
        "tool_calls": tool_calls or [],
    }
    return {
        "id": "chatcmpl-8f2c",
        "object": "chat.completion",
        "created": 1760000000,
        "model": "Qwen/Qwen2.5-7B-Instruct",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if tool_calls else "stop",
                "stop_reason": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens + 9,
            "completion_tokens": 9,
        },
    }


def prompt_tokens(body: dict[str, Any]) -> int:
    """vLLM's and Ollama's chat templates put the tools in the prompt: they take tokens."""
    return 31 + 57 * len(body.get("tools") or [])


def sse_chunks(pieces: list[str], finish: str = "stop") -> str:
    """A streamed chat completion: one chunk per piece of content, then finish and usage."""
    return sse_deltas([{"content": piece} for piece in pieces], finish)


def sse_deltas(deltas: list[dict[str, Any]], finish: str = "stop") -> str:
    def chunk(delta: dict[str, Any], finish_reason: str | None) -> str:
        body = {
            "id": "chatcmpl-8f2c",
            "object": "chat.completion.chunk",
            "created": 1760000000,
            "model": "Qwen/Qwen2.5-7B-Instruct",
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        return f"data: {json.dumps(body)}\n\n"

    events = [chunk({"role": "assistant", "content": ""}, None)]
    events += [chunk(delta, None) for delta in deltas]
    events.append(chunk({}, finish))
    usage = {"id": "chatcmpl-8f2c", "object": "chat.completion.chunk", "choices": [],
             "usage": {"prompt_tokens": 412, "total_tokens": 430, "completion_tokens": 18}}  # fmt: skip
    events.append(f"data: {json.dumps(usage)}\n\n")
    return "".join(events) + "data: [DONE]\n\n"


def pieces_of(text: str, size: int = 5) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@dataclass
class RecordedUpstream:
    """Base of the fakes: records every request's path and JSON body."""

    call: str = '{"name": "click", "arguments": {"id": "e7"}}'
    text: str = "Sure! Click on Page 2 to select it."
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        self.requests.append((request.url.path, body))
        return self.answer(request.method, request.url.path, body)

    def answer(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(404, json={"detail": "Not Found"})

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [body for seen, body in self.requests if seen == path]

    def enforced_content(self, schema: dict[str, Any]) -> str:
        return PROBE_ANSWER if "probe" in json.dumps(schema) else self.call


@dataclass
class RecordedVLLM(RecordedUpstream):
    """vLLM 0.12: structured_outputs and response_format enforced; tool_choice honoured."""

    def answer(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        if path == "/version":
            return httpx.Response(200, json={"version": "0.12.0"})
        if path != "/v1/chat/completions":
            return super().answer(method, path, body)
        schema = (body.get("structured_outputs") or {}).get("json")
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            schema = response_format["json_schema"]["schema"]
        if schema is not None:
            content = self.enforced_content(schema)
        elif body.get("tool_choice") == "required" and body.get("tools"):
            return self.tool_calls(body)
        else:
            content = self.text
        if not body.get("stream"):
            return httpx.Response(200, json=completion(content, prompt_tokens=prompt_tokens(body)))
        return httpx.Response(
            200, text=sse_chunks(pieces_of(content)), headers={"content-type": "text/event-stream"}
        )

    def tool_calls(self, body: dict[str, Any]) -> httpx.Response:
        """vLLM's own forced tool choice: the call as `tool_calls`, arguments streamed."""
        name = body["tools"][0]["function"]["name"]
        if name == "report_number":
            arguments = '{"number": 7}'
        else:
            recorded = json.loads(self.call)
            name, arguments = recorded["name"], json.dumps(recorded["arguments"])
        call = {"id": "chatcmpl-tool-1", "type": "function",
                "function": {"name": name, "arguments": arguments}}  # fmt: skip
        if not body.get("stream"):
            return httpx.Response(200, json=completion(None, [call]))
        first = {"index": 0, **call, "function": {"name": name, "arguments": ""}}
        pieces = [{"tool_calls": [first]}] + [
            {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
            for piece in pieces_of(arguments)
        ]
        return httpx.Response(
            200,
            text=sse_deltas(pieces, "tool_calls"),
            headers={"content-type": "text/event-stream"},
        )


def ndjson(pieces: list[str], done_reason: str = "stop") -> str:
    lines = [
        {"model": "qwen2.5-coder:0.5b", "created_at": "2025-10-09T10:00:00.000000Z",
         "message": {"role": "assistant", "content": piece}, "done": False}
        for piece in pieces
    ]  # fmt: skip
    lines.append(
        {"model": "qwen2.5-coder:0.5b", "created_at": "2025-10-09T10:00:01.000000Z",
         "message": {"role": "assistant", "content": ""}, "done": True,
         "done_reason": done_reason, "total_duration": 4_883_583_458,
         "load_duration": 1_334_875, "prompt_eval_count": 26,
         "prompt_eval_duration": 342_546_000, "eval_count": 18,
         "eval_duration": 4_535_599_000}
    )  # fmt: skip
    return "".join(json.dumps(line) + "\n" for line in lines)


@dataclass
class RecordedOllama(RecordedUpstream):
    """Ollama: `format` on /api/chat enforced; its OpenAI layer's response_format too;
    tool_choice is not in its OpenAI layer's fields, so "required" gives text."""

    def answer(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        if path == "/api/version":
            return httpx.Response(200, json={"version": "0.12.3"})
        if path == "/api/chat":
            content = self.enforced_content(body["format"]) if body.get("format") else self.text
            if body.get("stream") is False:
                return httpx.Response(
                    200, json={"model": body["model"], "done": True,
                               "message": {"role": "assistant", "content": content}},
                )  # fmt: skip
            return httpx.Response(
                200, text=ndjson(pieces_of(content)),
                headers={"content-type": "application/x-ndjson"},
            )  # fmt: skip
        if path != "/v1/chat/completions":
            return super().answer(method, path, body)
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            content = self.enforced_content(response_format["json_schema"]["schema"])
        else:
            content = self.text
        if not body.get("stream"):
            return httpx.Response(200, json=completion(content, prompt_tokens=prompt_tokens(body)))
        return httpx.Response(
            200, text=sse_chunks(pieces_of(content)), headers={"content-type": "text/event-stream"}
        )


@dataclass
class IgnoringUpstream(RecordedUpstream):
    """An OpenAI-compatible server that enforces nothing: every answer is the recorded text."""

    def answer(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        if path != "/v1/chat/completions":
            return super().answer(method, path, body)
        if not body.get("stream"):
            return httpx.Response(200, json=completion(self.text))
        return httpx.Response(
            200,
            text=sse_chunks(pieces_of(self.text)),
            headers={"content-type": "text/event-stream"},
        )
