"""The `openai` engine: any OpenAI-compatible `/v1/chat/completions` server upstream.

vLLM, Ollama, LM Studio, the llama.cpp server and mlx-omni-server all speak it. Requests
and the streamed answer are translated by `openai_translate`. Not every upstream enforces
`tool_choice` (llama-server with Qwen2.5-Coder-0.5B answered "required" with text, issue
19), so forced calls go through the best constrained-output parameter the upstream was
found to honour (`openai_probe`), and the JSON that comes back is read as the call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import httpx

from deskloop.engines.base import (
    Finish,
    OutputEvent,
    TextDelta,
    UpstreamEngine,
    UpstreamError,
    Usage,
)
from deskloop.engines.openai_ollama import chunk_from_line, ollama_chat_body
from deskloop.engines.openai_probe import Enforcement, constrained_fields, probe_openai_upstream
from deskloop.engines.openai_translate import (
    ChunkTranslator,
    chat_completion_body,
    chat_messages,
    chat_tool,
    folded_system_messages,
)
from deskloop.engines.upstream_calls import (
    CallReader,
    call_schema,
    chosen_tools,
    closing,
    prompt_tools,
)
from deskloop.engines.upstream_http import (
    DEFAULT_READ_TIMEOUT_S,
    UpstreamFailure,
    api_root,
    first_served_model,
    new_client,
    read_failure,
    read_failure_of,
    server_sent_events,
    status_error,
    unreachable,
)

log = logging.getLogger("deskloop.server")

# An upstream that could not be probed (not up yet) is asked again after this long.
REPROBE_AFTER_S = 30.0
FORCED_CHOICES = ("any", "tool")


def bearer_headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


# The wordings of "prompt too long" seen upstream: OpenAI, vLLM and llama-cpp-python share
# the first; llama.cpp's server says "request (N tokens) exceeds the available context size
# (M tokens)" and adds `n_prompt_tokens` / `n_ctx` to its error object.
CONTEXT_LIMIT_PATTERNS = (
    re.compile(r"maximum context length is (\d+)"),
    re.compile(r"context size \((\d+) tokens\)"),
)
PROMPT_TOKENS_PATTERNS = (
    re.compile(r"\((\d+) in the messages"),
    re.compile(r"has (\d+) input tokens"),
    re.compile(r"requested (\d+) tokens in the messages"),
    re.compile(r"request \((\d+) tokens\)"),
)


class OpenAIEngine(UpstreamEngine):
    """Forwards Messages requests to an OpenAI-compatible server, streaming both ways."""

    name: ClassVar[str] = "openai"

    def __init__(
        self,
        model: str,
        upstream: str,
        api_key: str = "",
        *,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._model = model
        self._root = api_root(upstream)
        self._headers = bearer_headers(api_key)
        self._client = new_client(read_timeout_s, transport)
        self._transport = transport
        self._enforcement: Enforcement | None = None
        self._unprobed: tuple[float, Enforcement] | None = None
        self._probe_lock = asyncio.Lock()

    @property
    def model_id(self) -> str:
        return self._model

    @property
    def chat_url(self) -> str:
        return f"{self._root}/v1/chat/completions"

    async def enforcement(self) -> Enforcement:
        """What the upstream honours, probed once (again later if it could not be reached)."""
        known = self._enforcement
        if known is not None:
            return known
        if self._unprobed is not None and time.monotonic() - self._unprobed[0] < REPROBE_AFTER_S:
            return self._unprobed[1]
        async with self._probe_lock:  # concurrent first requests probe once
            return self._enforcement or await self._probe()

    async def _probe(self) -> Enforcement:
        found = await probe_openai_upstream(
            self._root, self._model, self._headers, transport=self._transport
        )
        if found.probed:
            self._enforcement, self._unprobed = found, None
        else:
            self._unprobed = (time.monotonic(), found)
        for line in found.lines():
            log.info("%s", line)
        return found

    def probe_now(self) -> Enforcement:
        """Probe before serving (`deskloop serve` does, so the log says it at start)."""
        return asyncio.run(self.enforcement())

    async def stream(self, request: dict[str, Any]) -> AsyncIterator[OutputEvent]:
        tools = request.get("tools") or []
        choice = request.get("tool_choice") or {}
        # Grounded enums are never rendered into the prompt; the constraint carries them.
        shown = {**request, "tools": prompt_tools(tools)} if tools else request
        body = chat_completion_body(shown, self._model)
        if tools and choice.get("type") in FORCED_CHOICES:
            enforcement = await self.enforcement()
            if enforcement.constraint is not None:
                async with closing(
                    self._forced_call(request, body, enforcement.constraint)
                ) as forced:
                    try:
                        first = await anext(forced)  # the request was taken
                    except UpstreamError as exc:
                        if exc.status != 400:
                            raise
                        # A schema the upstream cannot compile (a keyword its grammar lacks).
                        log.warning(
                            "the upstream at %s refused the %s constraint (%s); asking without it",
                            self._root,
                            enforcement.constraint,
                            exc,
                        )
                    else:
                        yield first
                        async for event in forced:
                            yield event
                        return
            else:
                log.warning(
                    "the upstream at %s enforces no constrained output: tool_choice %s relies "
                    "on its own tool_choice and on a call written as text",
                    self._root,
                    choice.get("type"),
                )
        translator = ChunkTranslator(stop_sequences=list(request.get("stop_sequences") or []))
        yield Usage(input_tokens=0)  # chat completions report usage only at the end
        async with self._chat_stream(body) as response:
            async for chunk in self._chunks(response, translator):
                for event in translator.feed(chunk):
                    yield event
        for event in translator.finish():
            yield event

    async def _forced_call(
        self, request: dict[str, Any], body: dict[str, Any], constraint: str
    ) -> AsyncIterator[OutputEvent]:
        """One call, enforced by the upstream's `constraint`, streamed as it is written."""
        schema = call_schema(chosen_tools(request["tools"], request["tool_choice"]))
        # The prompt still shows the tools (as on every other turn, so the upstream's prefix
        # cache holds); its own tool_choice and stop strings must not cut the JSON short.
        body = {
            key: value
            for key, value in body.items()
            if key not in ("tool_choice", "parallel_tool_calls", "stop")
        }
        translator = ChunkTranslator()
        reader = CallReader()
        if constraint == "format":
            responses = self._ollama_stream(ollama_chat_body(body, schema))
        else:
            responses = self._chat_stream({**body, **constrained_fields(constraint, schema)})
        async with responses as response:
            yield Usage(input_tokens=0)
            async for chunk in self._chunks(response, translator, native=constraint == "format"):
                for event in translator.feed(chunk):
                    if isinstance(event, TextDelta):
                        for call_event in reader.feed(event.text):
                            yield call_event
                    else:
                        yield event  # a server that read the JSON as tool_calls itself
        ending = reader.finish()
        if not ending and reader.text:
            log.warning(
                "the upstream at %s did not keep to its %s constraint: %.200r",
                self._root,
                constraint,
                reader.text,
            )
            yield TextDelta(reader.text)
        for event in ending:
            yield event
        for event in translator.finish():
            if isinstance(event, Finish) and reader.started:
                cut = translator.finish_reason == "length"
                yield Finish("max_tokens" if cut else "tool_use")
            else:
                yield event

    async def _chunks(
        self, response: httpx.Response, translator: ChunkTranslator, *, native: bool = False
    ) -> AsyncIterator[dict[str, Any]]:
        """The answer's chunks, from SSE (chat completions) or JSON lines (Ollama's own API)."""
        finished = False
        if native:
            async for line in response.aiter_lines():
                if line.strip():
                    chunk = chunk_from_line(self._chunk(line))
                    finished = bool(chunk["choices"][0]["finish_reason"])
                    yield chunk
        else:
            async for message in server_sent_events(response):
                if message.data.strip() == "[DONE]":
                    finished = True
                    break
                yield self._chunk(message.data)
        if not finished and translator.finish_reason is None:
            # llama-cpp-python answers 200 and then an empty stream when generation fails,
            # a prompt longer than its context window included.
            raise UpstreamError(
                f"the upstream at {self.chat_url} ended its stream without finishing the "
                "answer; its log says why (a prompt longer than its context window is one cause)",
                status=502,
            )

    def _chunk(self, data: str) -> dict[str, Any]:
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError as exc:
            raise UpstreamError(
                f"the upstream at {self.chat_url} streamed something that is not JSON: "
                f"{data[:200]!r}; is it an OpenAI-compatible server?",
                status=502,
            ) from exc
        if not isinstance(chunk, dict):
            raise UpstreamError(f"the upstream streamed an unexpected chunk: {data[:200]!r}")
        error = chunk.get("error")
        if error:  # some servers report failures inside the stream (Ollama: a string)
            code = error.get("code") if isinstance(error, dict) else None
            failure = read_failure(int(code or 500), data)
            raise status_error(failure, self.chat_url)
        return chunk

    @asynccontextmanager
    async def _ollama_stream(self, body: dict[str, Any]) -> AsyncIterator[httpx.Response]:
        url = f"{self._root}/api/chat"
        try:
            async with self._client.stream(
                "POST", url, json=body, headers=self._headers
            ) as response:
                if response.status_code >= 400:
                    raise self._failure_error(await read_failure_of(response))
                yield response
        except httpx.TransportError as exc:
            raise unreachable(url, exc) from exc

    @asynccontextmanager
    async def _chat_stream(self, body: dict[str, Any]) -> AsyncIterator[httpx.Response]:
        """POST the body; retry when a refusal names something this engine can adjust."""
        for _ in range(3):
            try:
                async with self._client.stream(
                    "POST", self.chat_url, json=body, headers=self._headers
                ) as response:
                    if response.status_code < 400:
                        yield response
                        return
                    failure = await read_failure_of(response)
            except httpx.TransportError as exc:
                raise unreachable(self.chat_url, exc) from exc
            adjusted = adjusted_body(failure, body)
            if adjusted is None:
                break
            body = adjusted
        raise self._failure_error(failure)

    def _failure_error(self, failure: UpstreamFailure) -> UpstreamError:
        prompt_tokens, context_limit = context_overflow(failure)
        if (
            prompt_tokens is not None
            and context_limit is not None
            and (prompt_tokens >= context_limit)
        ):
            # Exactly the text Claude Code compacts its history on (PROTOCOL-NOTES.md).
            return UpstreamError(
                f"prompt is too long: {prompt_tokens} tokens > {context_limit} maximum",
                status=400,
                error_type="invalid_request_error",
            )
        if failure.status == 404:
            return self._not_found(failure)
        return status_error(failure, self.chat_url)

    def _not_found(self, failure: UpstreamFailure) -> UpstreamError:
        if "model" in failure.message.lower():
            return UpstreamError(
                f"the upstream at {self._root} does not serve model {self._model!r}: "
                f"{failure.message}; pass --model with one of the names its /v1/models lists",
                status=404,
                error_type="not_found_error",
            )
        return UpstreamError(
            f"{self.chat_url} answered 404 ({failure.message}); is it an OpenAI-compatible "
            "server? --upstream should be its base URL, such as http://127.0.0.1:8000/v1",
            status=404,
            error_type="not_found_error",
        )

    async def count_tokens(self, request: dict[str, Any]) -> int:
        """Count with vLLM's `/tokenize`, or llama.cpp's `/apply-template` and `/tokenize`."""
        messages = chat_messages(request)
        vllm_body: dict[str, Any] = {"model": request.get("model") or self._model}
        vllm_body["messages"] = messages
        if request.get("tools"):
            vllm_body["tools"] = [chat_tool(tool) for tool in prompt_tools(request["tools"])]
        answer = await self._post_json("/tokenize", vllm_body)
        if isinstance(answer.get("count"), int):
            return int(answer["count"])
        template = await self._post_json("/apply-template", {"messages": messages})
        if isinstance(template.get("prompt"), str):
            tokens = await self._post_json("/tokenize", {"content": template["prompt"]})
            if isinstance(tokens.get("tokens"), list):
                return len(tokens["tokens"])
        raise UpstreamError(
            f"the upstream at {self._root} cannot count tokens: it has neither vLLM's "
            "/tokenize nor llama.cpp's /apply-template and /tokenize",
            status=404,
            error_type="not_found_error",
        )

    async def _post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to a path under the root; `{}` when the upstream has no such endpoint."""
        url = f"{self._root}{path}"
        try:
            response = await self._client.post(url, json=body, headers=self._headers)
        except httpx.TransportError as exc:
            raise unreachable(url, exc) from exc
        if response.status_code == 401:
            raise status_error(read_failure(401, response.text), url)
        if response.status_code >= 400:
            return {}
        try:
            answer = response.json()
        except json.JSONDecodeError:
            return {}
        return answer if isinstance(answer, dict) else {}

    async def aclose(self) -> None:
        await self._client.aclose()


def adjusted_body(failure: UpstreamFailure, body: dict[str, Any]) -> dict[str, Any] | None:
    """The body to retry with after a refusal, or None when nothing would help."""
    prompt_tokens, context_limit = context_overflow(failure)
    if prompt_tokens is not None and context_limit is not None:
        room = context_limit - prompt_tokens
        # Claude Code asks for max_tokens 128000; the cloud clamps, vLLM refuses.
        if 0 < room < body["max_tokens"]:
            return {**body, "max_tokens": room}
        return None
    message = failure.message.lower()
    if failure.status == 400 and ("system" in message or "alternate" in message):
        # Chat templates that take one leading system message (Mistral, Gemma) raise on
        # the system messages Claude Code puts mid-conversation: fold them into it.
        folded = folded_system_messages(body["messages"])
        if folded != body["messages"]:
            return {**body, "messages": folded}
    return None


def context_overflow(failure: UpstreamFailure) -> tuple[int | None, int | None]:
    """(prompt tokens, context window) when the failure says the context was exceeded."""
    if failure.status not in (400, 413, 422):
        return None, None
    error = failure.body.get("error")
    fields = error if isinstance(error, dict) else {}
    prompt = fields.get("n_prompt_tokens")
    limit = fields.get("n_ctx")
    if isinstance(prompt, int) and isinstance(limit, int):
        return prompt, limit
    limit_match = next(
        (m for p in CONTEXT_LIMIT_PATTERNS if (m := p.search(failure.message))), None
    )
    prompt_match = next(
        (m for p in PROMPT_TOKENS_PATTERNS if (m := p.search(failure.message))), None
    )
    if limit_match is None or prompt_match is None:
        return None, None
    return int(prompt_match.group(1)), int(limit_match.group(1))


def load_openai_engine(model: str, **options: Any) -> OpenAIEngine:
    """Engine registry factory; options: `upstream` (base URL), `upstream_api_key`."""
    upstream = str(options.get("upstream") or "")
    root = api_root(upstream)
    api_key = str(options.get("upstream_api_key") or "")
    if not model:
        model = first_served_model(root, bearer_headers(api_key))
    return OpenAIEngine(
        model,
        upstream,
        api_key,
        read_timeout_s=float(options.get("read_timeout_s") or DEFAULT_READ_TIMEOUT_S),
        transport=options.get("transport"),
    )
