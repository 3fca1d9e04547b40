"""Constrained decoding for tool calls: llguidance matchers behind the engines' `TokenGuide`.

The format family writes the grammar (free text, then calls whose name is a declared
tool and whose arguments follow that tool's input_schema); this module compiles it for
the model's tokenizer and turns the matcher's bitmask into the boolean mask the
engines apply before sampling.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Collection
from typing import Any

import numpy as np
import numpy.typing as npt
from llguidance import LLMatcher
from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask

from deskloop.server.protocol import Tool
from deskloop.server.tool_formats.base import GuideMode, MarkerSyntax, ToolFormat, lark_string

log = logging.getLogger(__name__)


class VocabularySyntax:
    """Markers and names as a tokenizer writes them (MarkerSyntax).

    Markers that are one special token in this vocabulary are matched as that token:
    Qwen's `<tool_call>`, Llama's `<|python_tag|>` and Mistral's `[TOOL_CALLS]` are special
    tokens, their text never comes out of ordinary tokens, so a string literal would forbid
    the very token the model uses.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __call__(self, text: str) -> str:
        tokens = self.tokenizer.tokenize_str(text, parse_special=True)
        if len(tokens) == 1 and self.tokenizer.is_special_token(tokens[0]):
            return f"<[{tokens[0]}]>"
        return lark_string(text)

    def spelled(self, text: str) -> str:
        tokens = self.tokenizer.tokenize_str(text)
        if not tokens or self.tokenizer.decode_str(tokens) != text:
            return lark_string(text)  # a tokenizer that cannot round-trip it: any spelling
        return " ".join(f"<[{token}]>" for token in tokens)


def marker_syntax(tokenizer: Any) -> MarkerSyntax:
    return VocabularySyntax(tokenizer)


def guide_mode(choice: str) -> GuideMode:
    """tool_choice type -> grammar mode."""
    if choice in ("any", "tool"):
        return "forced"
    if choice == "none":
        return "none"
    return "auto"


def build_grammar(
    tokenizer: Any,
    fmt: ToolFormat,
    tools: list[Tool],
    choice: str,
    forced_tool: str | None = None,
    *,
    parallel: bool = True,
) -> str:
    """The Lark grammar a request's answer must follow."""
    if choice == "tool" and forced_tool is not None:
        tools = [tool for tool in tools if tool.name == forced_tool]
    return fmt.grammar(
        tools, mode=guide_mode(choice), parallel=parallel, marker=marker_syntax(tokenizer)
    )


# Compiled matchers by (tokenizer, grammar): an agent sends the same tools every turn,
# and compiling 20 large tool schemas takes about 0.3 s here; a copy takes microseconds.
_COMPILED: OrderedDict[tuple[int, str], tuple[Any, Any]] = OrderedDict()  # -> (tokenizer, matcher)
_COMPILED_LIMIT = 16


def _fresh_matcher(tokenizer: Any, grammar: str) -> Any:
    key = (id(tokenizer), grammar)
    entry = _COMPILED.get(key)
    if entry is None or entry[0] is not tokenizer:
        compiled = LLMatcher(tokenizer, LLMatcher.grammar_from_lark(grammar), log_level=0)
        if compiled.is_error():
            raise GrammarRejected(compiled.get_error())
        entry = _COMPILED[key] = (tokenizer, compiled)
        while len(_COMPILED) > _COMPILED_LIMIT:
            _COMPILED.popitem(last=False)
    _COMPILED.move_to_end(key)
    return entry[1].deep_copy()


class GrammarGuide:
    """A `TokenGuide` over one llguidance matcher; counts the time spent masking."""

    def __init__(self, tokenizer: Any, grammar: str, *, stop_tokens: Collection[int] = ()):
        self.matcher = _fresh_matcher(tokenizer, grammar)
        self.vocab_size: int = tokenizer.vocab_size
        self.stop_tokens = sorted(stop_tokens)
        self.mask_seconds = 0.0  # total time in allowed_tokens + accept (benchmarks read it)
        self.failed = False
        self._bitmask = allocate_token_bitmask(1, self.vocab_size)

    def allowed_tokens(self) -> npt.NDArray[np.bool_] | None:
        if self.failed:
            return None
        started = time.perf_counter()
        fill_next_token_bitmask(self.matcher, self._bitmask)
        bits = np.unpackbits(self._bitmask.view(np.uint8), bitorder="little")
        mask: npt.NDArray[np.bool_] = bits[: self.vocab_size].view(np.bool_)
        if self.stop_tokens and self.matcher.is_accepting():
            mask[self.stop_tokens] = True
        self.mask_seconds += time.perf_counter() - started
        return mask

    def accept(self, token: int) -> None:
        if self.failed:
            return
        started = time.perf_counter()
        if not self.matcher.consume_token(token):
            # The engine sampled outside the mask (or a grammar bug): stop guiding; the
            # parser still validates every call, so nothing invalid is emitted.
            log.warning("token %d broke the call grammar: %s", token, self.matcher.get_error())
            self.failed = True
        self.mask_seconds += time.perf_counter() - started

    def is_complete(self) -> bool:
        """The output so far is a whole answer (nothing more is needed)."""
        return bool(self.matcher.is_accepting())


class GrammarRejected(ValueError):
    """llguidance refused a grammar (a schema feature it cannot compile)."""


def build_guide(
    tokenizer: Any,
    fmt: ToolFormat,
    tools: list[Tool],
    choice: str,
    forced_tool: str | None = None,
    *,
    parallel: bool = True,
    stop_tokens: Collection[int] = (),
) -> GrammarGuide | None:
    """A guide for one request, or None when generation runs free.

    `choice` is the tool_choice type (auto/any/tool/none); `tokenizer` is the engine's
    `guidance_tokenizer()`; `stop_tokens` (end-of-turn ids) are allowed once the answer
    is complete. A grammar llguidance refuses is logged and generation runs unguided:
    the parser's validation still keeps invalid calls out.
    """
    if not tools:
        return None
    grammar = build_grammar(tokenizer, fmt, tools, choice, forced_tool, parallel=parallel)
    try:
        return GrammarGuide(tokenizer, grammar, stop_tokens=stop_tokens)
    except GrammarRejected as exc:
        log.warning("tool grammar refused, generating unguided: %s", exc)
        return None
