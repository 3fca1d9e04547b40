"""The `anthropic` engine: passthrough to an Anthropic-compatible upstream.

The cloud API, a corporate gateway, or another deskloop server. The request goes on
unchanged (streaming); the upstream's SSE comes back as neutral events. A gateway in front
of another model may ignore `tool_choice`: a forced choice answered without a call is asked
once more with the structured-output constraint the upstream was found to honour
(`output_config.format`), else it is an error naming the upstream, never an `end_turn`.
"""

from __future__ import annotations

import json
import logging
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
from deskloop.engines.openai_probe import PROBE_SCHEMA, Enforcement, is_probe_answer
from deskloop.engines.openai_translate import parse_tool_arguments
from deskloop.engines.upstream_calls import CallReader, call_schema, chosen_tools, closing
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

log = logging.getLogger("deskloop.server")

ANTHROPIC_VERSION = "2023-06-01"
FORCED_CHOICES = ("any", "tool")
# The Messages API's structured outputs: `output_config.format` (its structured-outputs docs).
OUTPUT_FORMAT = "output_config.format"

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
        self._enforcement: Enforcement | None = None

    @property
    def model_id(self) -> str:
        return self._model

    @property
    def messages_url(self) -> str:
        return f"{self._root}/v1/messages"

    async def stream(self, request: dict[str, Any]) -> AsyncIterator[OutputEvent]:
        choice = request.get("tool_choice") or {}
        body = forwarded_body(request, self._model)
        forced = request.get("tools") and choice.get("type") in FORCED_CHOICES
        answer = self._forced(request, body) if forced else self._attempt(body)
        async with closing(answer):  # a client that goes away closes the upstream stream
            async for event in answer:
                yield event

    async def _attempt(self, body: dict[str, Any]) -> AsyncIterator[OutputEvent]:
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

    async def _forced(
        self, request: dict[str, Any], body: dict[str, Any]
    ) -> AsyncIterator[OutputEvent]:
        """A forced choice: held until a call starts; asked again once if none came."""
        held: list[OutputEvent] = []
        called = False
        async with closing(self._attempt(body)) as answer:
            async for event in answer:
                if called:
                    yield event
                elif isinstance(event, ToolCallStart):
                    called = True
                    for earlier in held:
                        yield earlier
                    yield event
                else:
                    held.append(event)
        if called:
            return
        said = "".join(e.text for e in held if isinstance(e, TextDelta))
        choice = request["tool_choice"]["type"]
        enforcement = await self.enforcement()
        if enforcement.constraint is None:
            raise UpstreamError(
                f"the upstream at {self.messages_url} ignored tool_choice {choice!r} (it "
                f"answered without a tool call: {said[:200]!r}) and honours no structured "
                "output to enforce it with; serve this model through an engine that enforces "
                "tool_choice",
                status=502,
            )
        log.warning(
            "the upstream at %s ignored tool_choice %r; asking once more with %s",
            self.messages_url,
            choice,
            OUTPUT_FORMAT,
        )
        first = next((e for e in held if isinstance(e, Usage)), Usage(input_tokens=0))
        yield first
        async with closing(self._constrained(request, body, said)) as again:
            async for event in again:
                yield event

    async def _constrained(
        self, request: dict[str, Any], body: dict[str, Any], said: str
    ) -> AsyncIterator[OutputEvent]:
        schema = call_schema(chosen_tools(request["tools"], request["tool_choice"]))
        output_config = {**(body.get("output_config") or {}), "format": _json_format(schema)}
        retry = {**body, "tool_choice": {"type": "auto"}, "output_config": output_config}
        reader = CallReader()
        called = False
        tail: list[OutputEvent] = []
        started = False
        try:
            async with closing(self._attempt(retry)) as answer:
                async for event in answer:
                    if not started and isinstance(event, Usage):
                        started = True  # the input was reported by the first answer
                    elif isinstance(event, TextDelta):
                        for call_event in reader.feed(event.text):
                            yield call_event
                    elif isinstance(event, ToolCallStart | ToolInputDelta | ToolCallEnd):
                        called = True
                        yield event
                    elif isinstance(event, Usage | Finish):
                        tail.append(event)
        except UpstreamError as exc:
            raise UpstreamError(
                f"the upstream at {self.messages_url} ignored tool_choice "
                f"{request['tool_choice']['type']!r}, then refused it with {OUTPUT_FORMAT}: {exc}",
                status=502,
            ) from exc
        ending = reader.finish()
        if not (called or ending):
            raise UpstreamError(
                f"the upstream at {self.messages_url} ignored tool_choice "
                f"{request['tool_choice']['type']!r} twice, the second time with "
                f"{OUTPUT_FORMAT} set (it answered {said[:100]!r}, then "
                f"{reader.text[:100]!r})",
                status=502,
            )
        for event in ending:
            yield event
        for event in tail:
            yield Finish("tool_use") if isinstance(event, Finish) else event

    async def enforcement(self) -> Enforcement:
        """Whether the upstream honours `output_config.format`, asked once when first needed."""
        if self._enforcement is None or not self._enforcement.probed:
            self._enforcement = await self._probe()
        return self._enforcement

    async def _probe(self) -> Enforcement:
        body = {
            "model": self._model,
            "max_tokens": 24,
            "messages": [{"role": "user", "content": "Say hello."}],
            "output_config": {"format": _json_format(PROBE_SCHEMA)},
        }
        try:
            response = await self._client.post(self.messages_url, json=body, headers=self._headers)
        except httpx.TransportError as exc:
            return Enforcement(self._root, "anthropic", error=str(exc), probed=False)
        honoured = False
        if response.status_code < 400:
            try:
                content = response.json().get("content") or []
            except (json.JSONDecodeError, AttributeError):
                content = []
            text = "".join(b.get("text", "") for b in content if isinstance(b, dict))
            honoured = is_probe_answer(text)
        found = (OUTPUT_FORMAT,) if honoured else ()
        ignored = () if honoured else (OUTPUT_FORMAT,)
        return Enforcement(self._root, "anthropic", found, ignored)

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


def _json_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "schema": schema}


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
