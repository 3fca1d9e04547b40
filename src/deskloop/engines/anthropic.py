"""The `anthropic` engine: passthrough to an Anthropic-compatible upstream.

The cloud API, a corporate gateway, or another deskloop server. The request goes on
unchanged (streaming); the upstream's SSE comes back as neutral events.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from deskloop.engines.base import (
    Finish,
    OutputEvent,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    ToolCallEnd,
    ToolCallStart,
    ToolInputDelta,
    UpstreamEngine,
    UpstreamError,
    Usage,
)
from deskloop.engines.openai_translate import parse_tool_arguments
from deskloop.engines.upstream_http import (
    API_KEY_HINT,
    DEFAULT_READ_TIMEOUT_S,
    STATUSES,
    UpstreamFailure,
    api_root,
    first_served_model,
    new_client,
    read_failure,
    read_failure_of,
    server_sent_events,
    unreachable,
)

ANTHROPIC_VERSION = "2023-06-01"

# The fields `/v1/messages/count_tokens` takes; the cloud refuses others (`max_tokens`).
COUNT_TOKENS_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")


class AnthropicEngine(UpstreamEngine):
    """Forwards Messages requests to an Anthropic-shaped server and reads its stream."""

    name: ClassVar[str] = "anthropic"

    def __init__(
        self,
        model: str,
        upstream: str,
        api_key: str = "",
        *,
        anthropic_beta: str = "",
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._model = model
        self._root = api_root(upstream)
        self._headers = anthropic_headers(api_key, anthropic_beta)
        self._client = new_client(read_timeout_s, transport)

    @property
    def model_id(self) -> str:
        return self._model

    @property
    def messages_url(self) -> str:
        return f"{self._root}/v1/messages"

    async def stream(self, request: dict[str, Any]) -> AsyncIterator[OutputEvent]:
        body = forwarded_body(request, self._model)
        reader = AnthropicStreamReader()
        try:
            async with self._client.stream(
                "POST", self.messages_url, json=body, headers=self._headers
            ) as response:
                if response.status_code >= 400:
                    raise envelope_error(await read_failure_of(response), self.messages_url)
                async for message in server_sent_events(response):
                    for event in reader.feed(message.event, self._event_data(message.data)):
                        yield event
                    if reader.stopped:
                        break
        except httpx.TransportError as exc:
            raise unreachable(self.messages_url, exc) from exc
        if not reader.stopped:
            raise UpstreamError(
                f"the upstream at {self.messages_url} ended its stream before message_stop",
                status=502,
            )
        for event in reader.finish():
            yield event

    def _event_data(self, data: str) -> dict[str, Any]:
        try:
            parsed = json.loads(data)
        except json.JSONDecodeError as exc:
            raise UpstreamError(
                f"the upstream at {self.messages_url} streamed something that is not JSON: "
                f"{data[:200]!r}; is it an Anthropic-compatible server?",
                status=502,
            ) from exc
        return parsed if isinstance(parsed, dict) else {}

    async def count_tokens(self, request: dict[str, Any]) -> int:
        """Forwarded to the upstream's `/v1/messages/count_tokens`."""
        url = f"{self.messages_url}/count_tokens"
        body = forwarded_body(request, self._model)
        body = {name: body[name] for name in COUNT_TOKENS_FIELDS if name in body}
        try:
            response = await self._client.post(url, json=body, headers=self._headers)
        except httpx.TransportError as exc:
            raise unreachable(url, exc) from exc
        if response.status_code >= 400:
            raise envelope_error(read_failure(response.status_code, response.text), url)
        try:
            tokens = response.json().get("input_tokens")
        except (json.JSONDecodeError, AttributeError):
            tokens = None
        if not isinstance(tokens, int):
            raise UpstreamError(f"{url} answered without input_tokens: {response.text[:200]}")
        return tokens

    async def aclose(self) -> None:
        await self._client.aclose()


def anthropic_headers(api_key: str, anthropic_beta: str = "") -> dict[str, str]:
    headers = {"anthropic-version": ANTHROPIC_VERSION}
    if api_key:
        headers["x-api-key"] = api_key
    if anthropic_beta:
        headers["anthropic-beta"] = anthropic_beta
    return headers


def forwarded_body(request: dict[str, Any], model: str) -> dict[str, Any]:
    """The request as the upstream gets it: streaming, and without unsigned thinking.

    The cloud refuses a thinking block without its signature, and deskloop's own answers
    carry none, so such blocks are dropped from the history.
    """
    body = dict(request)
    body["model"] = request.get("model") or model
    body["stream"] = True
    messages = []
    dropped_from_last_answer = False
    for message in request["messages"]:
        content = message["content"]
        if isinstance(content, list):
            kept = [block for block in content if not is_unsigned_thinking(block)]
            if message["role"] == "assistant":
                dropped_from_last_answer = len(kept) < len(content)
            if not kept:
                continue
            message = {**message, "content": kept}
        elif message["role"] == "assistant":
            dropped_from_last_answer = False
        messages.append(message)
    body["messages"] = messages
    if dropped_from_last_answer and (request.get("thinking") or {}).get("type") != "disabled":
        # With thinking on, the cloud wants the last answer to start with its (signed)
        # thinking block; without one, this turn goes on without thinking instead.
        body.pop("thinking", None)
    return body


def is_unsigned_thinking(block: dict[str, Any]) -> bool:
    return block.get("type") == "thinking" and not block.get("signature")


def envelope_error(failure: UpstreamFailure, url: str) -> UpstreamError:
    """The upstream's error, with its status and type kept (Claude Code reads the message)."""
    error_type = failure.error_type if failure.error_type in STATUSES else ""
    if failure.status == 401:
        return UpstreamError(
            f"the upstream at {url} refused the API key: {failure.message}; {API_KEY_HINT}",
            status=401,
            error_type="authentication_error",
        )
    if not error_type:
        error_type = "api_error" if failure.status >= 500 else "invalid_request_error"
        if failure.status == 404:
            error_type = "not_found_error"
    return UpstreamError(failure.message, status=failure.status, error_type=error_type)


@dataclass
class _ToolBlock:
    input: dict[str, Any]
    partial_json: str = ""


@dataclass
class AnthropicStreamReader:
    """Turns Messages SSE events into neutral output events.

    Thinking signatures pass through as `ThinkingSignature`; `forwarded_body` leaves
    unsigned thinking blocks out when the history comes back.
    """

    usage: Usage = field(default_factory=lambda: Usage(input_tokens=0))
    stop_reason: str | None = None
    stop_sequence: str | None = None
    stopped: bool = False
    _tools: dict[int, _ToolBlock] = field(default_factory=dict)

    def feed(self, event_type: str, data: dict[str, Any]) -> list[OutputEvent]:
        kind = data.get("type") or event_type
        if kind == "message_start":
            self.usage = merged_usage(self.usage, data.get("message", {}).get("usage") or {})
            return [self.usage]
        if kind == "content_block_start":
            return self._block_start(int(data.get("index", 0)), data.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(int(data.get("index", 0)), data.get("delta") or {})
        if kind == "content_block_stop":
            tool = self._tools.pop(int(data.get("index", 0)), None)
            if tool is None:
                return []
            return [ToolCallEnd(parse_tool_arguments(tool.partial_json) or tool.input)]
        if kind == "message_delta":
            delta = data.get("delta") or {}
            self.stop_reason = delta.get("stop_reason") or self.stop_reason
            self.stop_sequence = delta.get("stop_sequence") or self.stop_sequence
            self.usage = merged_usage(self.usage, data.get("usage") or {})
        elif kind == "message_stop":
            self.stopped = True
        elif kind == "error":
            error = data.get("error") or {}
            error_type = str(error.get("type") or "api_error")
            raise UpstreamError(
                str(error.get("message") or "the upstream reported an error mid-stream"),
                status=STATUSES.get(error_type, 500),
                error_type=error_type if error_type in STATUSES else "api_error",
            )
        return []  # ping, and event types added after this was written

    def _block_start(self, index: int, block: dict[str, Any]) -> list[OutputEvent]:
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            return [TextDelta(block["text"])]
        if kind == "thinking" and block.get("thinking"):
            return [ThinkingDelta(block["thinking"])]
        if kind == "tool_use":
            tool_input = block.get("input")
            self._tools[index] = _ToolBlock(tool_input if isinstance(tool_input, dict) else {})
            return [ToolCallStart(str(block["id"]), str(block["name"]))]
        return []

    def _block_delta(self, index: int, delta: dict[str, Any]) -> list[OutputEvent]:
        kind = delta.get("type")
        if kind == "text_delta":
            return [TextDelta(delta.get("text", ""))]
        if kind == "thinking_delta":
            return [ThinkingDelta(delta.get("thinking", ""))]
        if kind == "signature_delta" and delta.get("signature"):
            return [ThinkingSignature(str(delta["signature"]))]
        if kind == "input_json_delta" and index in self._tools:
            piece = str(delta.get("partial_json", ""))
            self._tools[index].partial_json += piece
            return [ToolInputDelta(piece)] if piece else []
        return []

    def finish(self) -> list[OutputEvent]:
        return [self.usage, Finish(self.stop_reason or "end_turn", self.stop_sequence)]


def merged_usage(usage: Usage, update: dict[str, Any]) -> Usage:
    """Usage with the counts the upstream reported; `message_delta` may repeat or add some."""

    def count(name: str, current: int) -> int:
        value = update.get(name)
        return value if isinstance(value, int) else current

    return Usage(
        input_tokens=count("input_tokens", usage.input_tokens),
        output_tokens=count("output_tokens", usage.output_tokens),
        cache_read_input_tokens=count("cache_read_input_tokens", usage.cache_read_input_tokens),
        cache_creation_input_tokens=count(
            "cache_creation_input_tokens", usage.cache_creation_input_tokens
        ),
    )


def load_anthropic_engine(model: str, **options: Any) -> AnthropicEngine:
    """Engine registry factory; options: `upstream` (base URL), `upstream_api_key`."""
    upstream = str(options.get("upstream") or "")
    api_key = str(options.get("upstream_api_key") or "")
    beta = str(options.get("anthropic_beta") or "")
    if not model:
        model = first_served_model(api_root(upstream), anthropic_headers(api_key, beta))
    return AnthropicEngine(
        model,
        upstream,
        api_key,
        anthropic_beta=beta,
        read_timeout_s=float(options.get("read_timeout_s") or DEFAULT_READ_TIMEOUT_S),
        transport=options.get("transport"),
    )
