"""The `openai` engine: any OpenAI-compatible `/v1/chat/completions` server upstream.

vLLM, Ollama, LM Studio, the llama.cpp server and mlx-omni-server all speak it. Requests
and the streamed answer are translated by `openai_translate`.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import httpx

from deskloop.engines.base import OutputEvent, UpstreamEngine, UpstreamError, Usage
from deskloop.engines.openai_translate import (
    ChunkTranslator,
    chat_completion_body,
    chat_messages,
    chat_tool,
    folded_system_messages,
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

    @property
    def model_id(self) -> str:
        return self._model

    @property
    def chat_url(self) -> str:
        return f"{self._root}/v1/chat/completions"

    async def stream(self, request: dict[str, Any]) -> AsyncIterator[OutputEvent]:
        body = chat_completion_body(request, self._model)
        translator = ChunkTranslator(stop_sequences=list(request.get("stop_sequences") or []))
        yield Usage(input_tokens=0)  # chat completions report usage only at the end
        finished = False
        async with self._chat_stream(body) as response:
            async for message in server_sent_events(response):
                if message.data.strip() == "[DONE]":
                    finished = True
                    break
                for event in translator.feed(self._chunk(message.data)):
                    yield event
        if not finished and translator.finish_reason is None:
            # llama-cpp-python answers 200 and then an empty stream when generation fails,
            # a prompt longer than its context window included.
            raise UpstreamError(
                f"the upstream at {self.chat_url} ended its stream without finishing the "
                "answer; its log says why (a prompt longer than its context window is one cause)",
                status=502,
            )
        for event in translator.finish():
            yield event

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
        if chunk.get("error"):  # some servers report failures inside the stream
            failure = read_failure(int(chunk["error"].get("code") or 500), data)
            raise status_error(failure, self.chat_url)
        return chunk

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
            vllm_body["tools"] = [chat_tool(tool) for tool in request["tools"]]
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
