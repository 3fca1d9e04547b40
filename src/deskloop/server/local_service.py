"""Serving Messages requests with an in-process engine (llamacpp, mlx, scripted).

The request is rendered with the model's chat template and tokenized; the engine runs
on its own thread and its tokens come back through an asyncio queue, decoded,
filtered for stop sequences and parsed for tool calls on the way.

One thread owns the engine's native context for the life of the service: generations
run on it one after another, so a cancelled one has finished (its last batch evaluated,
its cache recorded) before the next begins, however the request that started it ended.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import string
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from deskloop.engines.base import (
    CallGuide,
    EngineError,
    Finish,
    LocalEngine,
    OutputEvent,
    PrefillReport,
    Sampling,
    TextDelta,
    TokenGuide,
    ToolCallEnd,
    ToolCallStart,
    ToolInputDelta,
    Usage,
)
from deskloop.server.admission import EngineQueue, Ticket
from deskloop.server.errors import InternalError, prompt_too_long
from deskloop.server.prompt import render_prompt
from deskloop.server.prompt_tokens import PromptTokenizer
from deskloop.server.protocol import MessagesRequest, Tool
from deskloop.server.responses import TokenCount
from deskloop.server.runaway import RunawayWatch
from deskloop.server.text_stream import StopSequenceFilter, Utf8Joiner
from deskloop.server.tool_formats import choose_tool_format
from deskloop.server.tool_formats.base import (
    ParsedCallEnd,
    ParsedCallInvalid,
    ParsedCallStart,
    ParsedEvent,
    ParsedInputDelta,
    ParsedText,
    ToolFormat,
)

# The engine thread hands its events to the event loop at most this often (the first at
# once): waking the loop for every token (9 ms apart on SmolLM2 here) took a core from
# llama.cpp's threads each time; 200-token answers through HTTP went from 100 to 104
# tok/s streamed and from 103 to 111 whole (llama-server: 109 and 116, same rounds).
DELIVERY_INTERVAL_S = 0.05

log = logging.getLogger("deskloop.server")

_ID_ALPHABET = string.ascii_letters + string.digits


def new_tool_use_id() -> str:
    return "toolu_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


@dataclass
class PreparedRequest:
    prompt_tokens: list[int]
    sampling: Sampling
    tools: list[Tool]
    stop_sequences: list[str]
    choice: str  # auto | any | tool | none
    forced_tool: str | None
    parallel: bool
    cached_estimate: int


@dataclass
class _RunState:
    """What one generation has produced so far; touched only by the worker thread."""

    output_tokens: int = 0
    prefill: PrefillReport | None = None
    open_call: bool = False
    calls_done: int = 0
    events: list[OutputEvent] = field(default_factory=list)
    delivered_at: float = -DELIVERY_INTERVAL_S  # when events last went to the loop


def _common_prefix(a: list[int], b: list[int]) -> int:
    size = min(len(a), len(b))
    for position in range(size):
        if a[position] != b[position]:
            return position
    return size


class LocalModelService:
    """One in-process model behind the Messages API."""

    def __init__(
        self,
        engine: LocalEngine,
        *,
        context_window: int,
        queue_size: int,
        tool_format: str = "",
        tool_diet: bool = False,
    ):
        self.engine = engine
        info = engine.info
        self.model_id = info.model_id
        self.parameters = info.parameters
        self.family = info.architecture
        self.context_window = min(context_window, info.context_window) or info.context_window
        self.tool_format: ToolFormat = choose_tool_format(
            info.chat_template, info.architecture, tool_format
        )
        self.tool_diet = tool_diet
        self.queue = EngineQueue(queue_size)
        self._engine_thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="deskloop-engine"
        )
        self._last_tokens: list[int] = []
        # A conversation's next prompt repeats the last: only its new tail is tokenized.
        self.prompt_tokenizer = PromptTokenizer(engine)
        self._guidance_tokenizer: Any = None
        self._diet_savings: dict[str, int] = {}

    # -- preparing -----------------------------------------------------------------

    def _tools(self, request: MessagesRequest, *, diet: bool | None = None) -> list[Tool]:
        tools = list(request.tools or [])
        if tools and (self.tool_diet if diet is None else diet):
            from deskloop.server.tool_schema import slim_tools

            tools = slim_tools(tools)
        return tools

    def render(self, request: MessagesRequest, *, diet: bool | None = None) -> list[int]:
        """The token ids inference would run for this request (count_tokens uses the same).

        Long enums are rendered compactly; the grammar (`prepare`) keeps every value.
        """
        from deskloop.server.tool_schema import compact_enums

        tools = compact_enums(self._tools(request, diet=diet))
        rendered = render_prompt(request, tools, self.tool_format, self.engine.info)
        if diet is not None:  # the tool diet's comparison: not the conversation's own prompt
            return self.engine.tokenize(rendered.text)
        return self.prompt_tokenizer.tokenize(rendered.text)

    def diet_saving(self, request: MessagesRequest) -> int | None:
        """Prompt tokens `--tool-diet` saves on this request's tools; None when it is off.

        The saving depends on the tools alone, so it is worked out once per tool set.
        """
        if not self.tool_diet or not request.tools:
            return None
        key = json.dumps([tool.model_dump(mode="json") for tool in request.tools], sort_keys=True)
        saved = self._diet_savings.get(key)
        if saved is None:
            saved = len(self.render(request, diet=False)) - len(self.render(request, diet=True))
            self._diet_savings[key] = saved
            log.info("tool diet: %d tools, %d prompt tokens saved", len(request.tools), saved)
        return saved

    def prepare(self, request: MessagesRequest) -> PreparedRequest:
        self.diet_saving(request)
        tokens = self.render(request)
        if len(tokens) >= self.context_window:
            raise prompt_too_long(len(tokens), self.context_window)
        # Clients ask for far more than a small window holds (Claude Code: 128000);
        # clamping to what the context leaves lets them start instead of failing.
        max_tokens = min(request.max_tokens, self.context_window - len(tokens))
        choice = request.tool_choice
        sampling = Sampling(
            max_tokens=max_tokens,
            temperature=1.0 if request.temperature is None else request.temperature,
            top_p=request.top_p,
            top_k=request.top_k,
        )
        return PreparedRequest(
            prompt_tokens=tokens,
            sampling=sampling,
            tools=self._tools(request),
            stop_sequences=list(request.stop_sequences or []),
            choice=choice.type if choice else "auto",
            forced_tool=choice.name if choice and choice.type == "tool" else None,
            parallel=not (choice.disable_parallel_tool_use if choice else False),
            cached_estimate=_common_prefix(tokens, self._last_tokens),
        )

    def _guide(self, prepared: PreparedRequest) -> TokenGuide | None:
        if not prepared.tools:
            return None
        from deskloop.server.constraints import build_guide

        if self._guidance_tokenizer is None:
            try:
                self._guidance_tokenizer = self.engine.guidance_tokenizer()
            except EngineError:
                self._guidance_tokenizer = False
        if self._guidance_tokenizer is False:
            return None
        guide: TokenGuide | None = build_guide(
            self._guidance_tokenizer,
            self.tool_format,
            prepared.tools,
            prepared.choice,
            prepared.forced_tool,
            parallel=prepared.parallel,
        )
        return guide

    # -- running -------------------------------------------------------------------

    async def count_tokens(self, request: MessagesRequest) -> TokenCount:
        tokens = await asyncio.to_thread(self.render, request)
        saved = await asyncio.to_thread(self.diet_saving, request)
        return TokenCount(len(tokens), saved)

    async def run(self, request: MessagesRequest) -> AsyncIterator[OutputEvent]:
        """Usage first (before any waiting), then content events, final usage, Finish."""
        prepared = await asyncio.to_thread(self.prepare, request)
        ticket = self.queue.admit()
        try:
            cached = prepared.cached_estimate
            yield Usage(
                input_tokens=len(prepared.prompt_tokens) - cached, cache_read_input_tokens=cached
            )
            async with ticket.turn():
                async for event in self._generate(prepared, ticket):
                    yield event
        finally:
            ticket.close()

    def close(self) -> None:
        """Stop taking work, wait for the running generation, free the engine."""
        self._engine_thread.shutdown(wait=True, cancel_futures=True)
        self.engine.close()

    async def _generate(
        self, prepared: PreparedRequest, ticket: Ticket
    ) -> AsyncIterator[OutputEvent]:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[list[OutputEvent] | BaseException | None] = asyncio.Queue()
        cancel = threading.Event()

        def deliver(item: list[OutputEvent] | BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(inbox.put_nowait, item)
            except RuntimeError:  # the event loop has closed: nobody is listening any more
                cancel.set()

        work = self._engine_thread.submit(self._work, prepared, cancel, deliver)
        # Not awaited on the way out: the engine and the queue place stay this work's until
        # it has really ended, even when this coroutine is cancelled (a client went away).
        ticket.hand_over(work)
        try:
            while True:
                item = await inbox.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    if isinstance(item, EngineError):
                        raise InternalError(f"the model failed: {item}") from item
                    raise item
                for event in item:
                    yield event
        finally:
            # A client that went away (or any exit) stops generation at the next token.
            cancel.set()

    def _work(
        self,
        prepared: PreparedRequest,
        cancel: threading.Event,
        deliver: Callable[[list[OutputEvent] | BaseException | None], None],
    ) -> None:
        try:
            if cancel.is_set():
                deliver(None)
                return
            guide = self._guide(prepared)
            self._work_inner(prepared, guide, cancel, deliver)
            deliver(None)
        except BaseException as exc:  # handed to the event loop, which re-raises it
            deliver(exc)

    def _work_inner(
        self,
        prepared: PreparedRequest,
        guide: TokenGuide | None,
        cancel: threading.Event,
        deliver: Callable[[list[OutputEvent] | BaseException | None], None],
    ) -> None:
        engine = self.engine
        state = _RunState()
        joiner = Utf8Joiner()
        stops = StopSequenceFilter(prepared.stop_sequences)
        parser = (
            self.tool_format.new_parser(prepared.tools, guided=guide is not None)
            if prepared.tools
            else None
        )
        generated: list[int] = []
        runaway = RunawayWatch(call_required=prepared.choice in ("any", "tool"))

        def on_prefill(report: PrefillReport) -> None:
            state.prefill = report

        def take_text(text: str) -> None:
            visible = stops.push(text)
            if visible:
                self._absorb(parser.feed(visible) if parser else [ParsedText(visible)], state)

        for token in engine.generate(
            prepared.prompt_tokens,
            prepared.sampling,
            cancel=cancel,
            guide=guide,
            on_prefill=on_prefill,
        ):
            generated.append(token)
            state.output_tokens += 1
            piece = joiner.push(engine.token_bytes(token))
            take_text(piece)
            now = time.monotonic()
            if state.events and now - state.delivered_at >= DELIVERY_INTERVAL_S:
                deliver(state.events)
                state.events = []
                state.delivered_at = now
            if stops.matched or (state.calls_done and not prepared.parallel):
                break
            if runaway.push(piece, in_call=state.open_call, calls_done=state.calls_done):
                if isinstance(guide, CallGuide) and not guide.is_complete():
                    # Inside a call: the decoder closes it (a quote, a brace, the end marker)
                    # rather than cutting it, so a forced call still arrives (issue 17).
                    if not guide.close_requested:
                        log.warning(
                            "closing a runaway call after %d tokens: %s",
                            state.output_tokens,
                            runaway.reason,
                        )
                        guide.close_requested = True
                    continue
                log.warning(
                    "stopped a runaway answer after %d tokens: %s",
                    state.output_tokens,
                    runaway.reason,
                )
                break
        take_text(joiner.flush())
        tail = stops.flush()
        if tail:
            self._absorb(parser.feed(tail) if parser else [ParsedText(tail)], state)
        if parser:
            self._absorb(parser.finish(), state)
        self._last_tokens = prepared.prompt_tokens + generated
        state.events.extend(self._closing(prepared, state, stops, cancel))
        deliver(state.events)

    def _absorb(self, parsed: list[ParsedEvent], state: _RunState) -> None:
        for item in parsed:
            if isinstance(item, ParsedText):
                state.events.append(TextDelta(item.text))
            elif isinstance(item, ParsedCallStart):
                state.open_call = True
                state.events.append(ToolCallStart(new_tool_use_id(), item.name))
            elif isinstance(item, ParsedInputDelta):
                state.events.append(ToolInputDelta(item.partial_json))
            elif isinstance(item, ParsedCallEnd):
                state.open_call = False
                state.calls_done += 1
                state.events.append(ToolCallEnd(item.input))
            elif isinstance(item, ParsedCallInvalid):
                log.warning("model wrote an invalid tool call (%s): %.200r", item.reason, item.raw)
                if not state.open_call:
                    state.events.append(TextDelta(item.raw))

    def _closing(
        self,
        prepared: PreparedRequest,
        state: _RunState,
        stops: StopSequenceFilter,
        cancel: threading.Event,
    ) -> list[OutputEvent]:
        prefill = state.prefill
        prompt_tokens = len(prepared.prompt_tokens)
        cached = prefill.cached_tokens if prefill else 0
        usage = Usage(
            input_tokens=prompt_tokens - cached,
            output_tokens=state.output_tokens,
            cache_read_input_tokens=cached,
        )
        if stops.matched:
            finish = Finish("stop_sequence", stops.matched.sequence)
        elif state.calls_done and not state.open_call:
            finish = Finish("tool_use")
        elif state.output_tokens >= prepared.sampling.max_tokens or state.open_call:
            finish = Finish("max_tokens")
        else:
            finish = Finish("end_turn")
        if cancel.is_set() and not stops.matched:
            log.info("generation cancelled after %d tokens", state.output_tokens)
        return [usage, finish]
