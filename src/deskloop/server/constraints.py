"""Constrained decoding for tool calls: llguidance matchers behind the engines' `CallGuide`.

The format family writes the grammar (free text, then calls whose name is a declared
tool and whose arguments follow that tool's input_schema); this module compiles it for
the model's tokenizer and turns the matcher's bitmask into the boolean mask the
engines apply before sampling.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from llguidance import LLMatcher
from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask

from deskloop.engines.base import ValueCandidates
from deskloop.server.protocol import Tool
from deskloop.server.tool_formats.base import (
    GuideMode,
    MarkerSyntax,
    ToolFormat,
    ValueChoice,
    lark_string,
)

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

    def spelled(self, text: str, *, before: str = "", after: str = "") -> str:
        whole = before + text + after
        tokens = self.tokenizer.tokenize_str(whole)
        pieces = [self.tokenizer.decode_bytes([token]) for token in tokens]
        encoded = whole.encode()
        if not text or b"".join(pieces) != encoded:
            return lark_string(whole)  # a tokenizer that cannot round-trip it: any spelling
        start, end = len(before.encode()), len(before.encode()) + len(text.encode())
        # The tokens that cover `text`: in context they may also cover a quote or an `=`.
        offset, first, last = 0, -1, -1
        for index, piece in enumerate(pieces):
            if first < 0 and offset + len(piece) > start:
                first = index
            if offset < end:
                last = index
            offset += len(piece)
        covered_from = sum(len(piece) for piece in pieces[:first])
        covered_to = covered_from + sum(len(piece) for piece in pieces[first : last + 1])
        # A token whose bytes another token also has (SentencePiece's byte tokens: `_` and
        # <0x5F>) is written as text: llguidance 1.9 refuses such a token named by its id
        # once the mask has been computed ("forced bytes: got 'ÿ'"), measured on Gemma's
        # and Llama 2's vocabularies.
        shared = _vocabulary(self.tokenizer).shared_pieces
        parts: list[str] = []
        literal = encoded[:covered_from]
        try:
            for token, piece in zip(
                tokens[first : last + 1], pieces[first : last + 1], strict=True
            ):
                if piece in shared:
                    literal += piece
                    continue
                if literal:
                    parts.append(lark_string(literal.decode()))
                    literal = b""
                parts.append(f"<[{token}]>")
            literal += encoded[covered_to:]
            if literal:
                parts.append(lark_string(literal.decode()))
        except UnicodeDecodeError:
            return lark_string(whole)
        return " ".join(parts)


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


class _Vocabulary:
    """What the guides of one tokenizer look up by token: its bytes, its length."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.size: int = tokenizer.vocab_size
        self._pieces: list[bytes] | None = None
        self._lengths: npt.NDArray[np.int32] | None = None
        self._shared: frozenset[bytes] | None = None
        self._ends: dict[bytes, npt.NDArray[np.bool_]] = {}

    @property
    def pieces(self) -> list[bytes]:
        if self._pieces is None:  # built on first use: about 0.1 s for 150k tokens
            decode = self.tokenizer.decode_bytes
            self._pieces = [decode([token]) for token in range(self.size)]
        return self._pieces

    @property
    def shared_pieces(self) -> frozenset[bytes]:
        """Byte strings that more than one token stands for."""
        if self._shared is None:
            seen: set[bytes] = set()
            shared: set[bytes] = set()
            for piece in self.pieces:
                (shared if piece in seen else seen).add(piece)
            self._shared = frozenset(shared)
        return self._shared

    @property
    def lengths(self) -> npt.NDArray[np.int32]:
        if self._lengths is None:
            self._lengths = np.array([len(piece) for piece in self.pieces], dtype=np.int32)
        return self._lengths

    def tokens(self, text: str) -> list[int]:
        """`text` as tokens; a marker that is one special token in this vocabulary is that token."""
        tokens: list[int] = self.tokenizer.tokenize_str(text, parse_special=True)
        if len(tokens) == 1 and self.tokenizer.is_special_token(tokens[0]):
            return tokens
        plain: list[int] = self.tokenizer.tokenize_str(text)
        return plain

    def ends(self, closing: str) -> npt.NDArray[np.bool_]:
        """Tokens that end a value closed by `closing`: the special token it is, or any token
        that starts writing it (a quote, or a quote and a brace in one token)."""
        tokens = self.tokens(closing)
        key = closing.encode()
        mask = self._ends.get(key)
        if mask is None:
            mask = np.zeros(self.size, dtype=np.bool_)
            if len(tokens) == 1 and self.tokenizer.is_special_token(tokens[0]):
                mask[tokens[0]] = True
            else:
                for token, piece in enumerate(self.pieces):
                    if piece and (piece.startswith(key) or key.startswith(piece)):
                        mask[token] = True
            self._ends[key] = mask
        return mask


_VOCABULARIES: dict[int, _Vocabulary] = {}


def _vocabulary(tokenizer: Any) -> _Vocabulary:
    known = _VOCABULARIES.get(id(tokenizer))
    if known is None or known.tokenizer is not tokenizer:
        known = _VOCABULARIES[id(tokenizer)] = _Vocabulary(tokenizer)
    return known


@dataclass
class _Choice:
    """The values of every ValueChoice that opens with one text, as tokens."""

    values: list[list[int]]
    closing: list[int]
    ends: npt.NDArray[np.bool_]


class GrammarGuide:
    """A `CallGuide` over one llguidance matcher; counts the time spent masking."""

    def __init__(
        self,
        tokenizer: Any,
        grammar: str,
        *,
        stop_tokens: Collection[int] = (),
        required: bool = False,
        closers: Sequence[str] = (),
        choices: Sequence[ValueChoice] = (),
    ):
        self.matcher = _fresh_matcher(tokenizer, grammar)
        self.vocab_size: int = tokenizer.vocab_size
        self.stop_tokens = sorted(stop_tokens)
        self.mask_seconds = 0.0  # total time in allowed_tokens + accept (benchmarks read it)
        self.failed = False
        self._required = required
        self._answered = False  # a whole answer was reached (a further call is optional)
        self.close_requested = False
        self._bitmask = allocate_token_bitmask(1, self.vocab_size)
        self._scratch = allocate_token_bitmask(1, self.vocab_size)
        self._vocabulary = _vocabulary(tokenizer)
        self._closers = [self._vocabulary.tokens(text) for text in closers]
        self._choices: dict[bytes, _Choice] = {}
        for choice in choices:
            self._add_choice(choice)
        self._tail = b""  # the end of the output, as long as the longest choice opening
        self._tail_keep = max((len(opening) for opening in self._choices), default=0)

    def _add_choice(self, choice: ValueChoice) -> None:
        opening = choice.opening.encode()
        known = self._choices.get(opening)
        if known is None:
            known = self._choices[opening] = _Choice(
                [], self._vocabulary.tokens(choice.closing), self._vocabulary.ends(choice.closing)
            )
        for value in choice.values:
            tokens = self._vocabulary.tokenizer.tokenize_str(value)
            if tokens and tokens not in known.values:
                known.values.append(tokens)

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
        else:
            if self._required and not self._answered:
                self._answered = bool(self.matcher.is_accepting())
            if self._tail_keep:
                piece = self._vocabulary.tokenizer.decode_bytes([token])
                self._tail = (self._tail + piece)[-self._tail_keep :]
        self.mask_seconds += time.perf_counter() - started

    # -- fast-forward (issue 21): what the grammar forces is written without the model --

    def forced_tokens(self) -> list[int]:
        """The tokens the grammar forces from here, not yet accepted.

        llguidance tokenizes the forced bytes and leaves out a last token that a longer
        vocabulary token could span (` "` where ` ""` exists): the model chooses there, so
        what comes out is what it would have chosen token by token.
        """
        if self.failed:
            return []
        started = time.perf_counter()
        forced: list[int] = self.matcher.compute_ff_tokens()
        if forced and self._tail_keep:
            forced = self._up_to_a_choice(forced)
        self.mask_seconds += time.perf_counter() - started
        return forced

    def _up_to_a_choice(self, forced: list[int]) -> list[int]:
        """`forced` cut where a choice among whole values opens (`"element_id": "`): the
        values may share forced bytes (the `e` of every id), and the choice is scored whole
        only from its opening on (issue 17)."""
        tail = self._tail
        for index, token in enumerate(forced):
            piece = self._vocabulary.tokenizer.decode_bytes([token])
            for end in range(1, len(piece) + 1):
                if any((tail + piece[:end]).endswith(opening) for opening in self._choices):
                    # Where the opening ends inside a token (` "e`), the model chooses that
                    # token or the opening's own last one, as it would without fast-forward.
                    return forced[: index + 1] if end == len(piece) else forced[:index]
            tail = (tail + piece)[-self._tail_keep :]
        return forced

    # -- prompt drafts (issue 21): tokens proposed from the prompt, judged without taking them --

    def draft_length(self, tokens: Sequence[int]) -> int:
        """How many of `tokens` the grammar accepts from here, cut after the first token
        that leaves a forced run or the opening of a choice among whole values next (the
        decode loop writes or scores those itself); 0 where a choice opens here."""
        if self.failed or not tokens:
            return 0
        if self._tail_keep and any(self._tail.endswith(opening) for opening in self._choices):
            return 0
        started = time.perf_counter()
        valid = int(self.matcher.validate_tokens(list(tokens)))
        matcher = self.matcher.deep_copy() if valid else None
        tail = self._tail
        length = 0
        for token in tokens[:valid]:
            assert matcher is not None
            if not matcher.consume_token(token):
                break
            length += 1
            if matcher.compute_ff_tokens():
                break
            if self._tail_keep:
                tail = (tail + self._vocabulary.tokenizer.decode_bytes([token]))[-self._tail_keep :]
                if any(tail.endswith(opening) for opening in self._choices):
                    break
        self.mask_seconds += time.perf_counter() - started
        return length

    def is_stopped(self) -> bool:
        """The grammar is done: only an end-of-turn token can follow."""
        return not self.failed and bool(self.matcher.is_stopped()) and not self.matcher.is_error()

    @property
    def required(self) -> bool:
        """A call must still arrive: tool_choice any/tool, and no call has closed yet (a
        second, parallel call is closed only where it fits, like an optional one)."""
        return self._required and not self._answered

    def is_complete(self) -> bool:
        """The output so far is a whole answer (nothing more is needed)."""
        return bool(self.matcher.is_accepting())

    # -- closing a call within the tokens left (issue 17: a forced call always arrives) --

    def _writes(self, matcher: Any) -> list[int]:
        """What closing writes without the model at `matcher`'s state: the tokens the grammar
        forces, else the first closer (quote, brace, end marker) it accepts here, else the
        bytes the grammar forces."""
        forced: list[int] = matcher.compute_ff_tokens()
        if forced:
            return forced
        for closer in self._closers:
            if closer and matcher.validate_tokens(closer) == len(closer):
                return closer
        # Forced bytes that a longer token could also begin (` "` where ` ""` exists):
        # llguidance leaves them to the model; closing writes them as they are.
        text = matcher.compute_ff_bytes()
        if text:
            tokens: list[int] = self._vocabulary.tokenizer.tokenize_bytes(text)
            if tokens and matcher.validate_tokens(tokens) == len(tokens):
                return tokens
        return []

    def closing_step(self) -> list[int]:
        if self.failed or self.matcher.is_accepting():
            return []
        return self._writes(self.matcher)

    def closing_need(self, limit: int) -> int | None:
        if self.failed or self.matcher.is_accepting():
            return None
        started = time.perf_counter()
        matcher = self.matcher.deep_copy()
        need = 0
        # Where the model would choose, the longest allowed token stands in for its choice.
        while not matcher.is_accepting() and need <= limit:
            tokens = self._writes(matcher)
            if not tokens:
                fill_next_token_bitmask(matcher, self._scratch)
                bits = np.unpackbits(self._scratch.view(np.uint8), bitorder="little")
                allowed = bits[: self.vocab_size].view(np.bool_)
                if not allowed.any():
                    break
                tokens = [int(np.argmax(np.where(allowed, self._vocabulary.lengths, -1)))]
            if not matcher.consume_tokens(tokens):
                break
            need += len(tokens)
        self.mask_seconds += time.perf_counter() - started
        return need if matcher.is_accepting() else None

    # -- choices among a few whole values (issue 17: choices scored whole) --------------

    def value_choice(self) -> ValueCandidates | None:
        if self.failed or not self._tail_keep:
            return None
        choice = next(
            (known for opening, known in self._choices.items() if self._tail.endswith(opening)),
            None,
        )
        if choice is None:
            return None
        started = time.perf_counter()
        valid = [
            tokens
            for tokens in choice.values
            if self.matcher.validate_tokens(tokens + choice.closing)
            == len(tokens) + len(choice.closing)
        ]
        fill_next_token_bitmask(self.matcher, self._scratch)
        allowed = int(np.unpackbits(self._scratch.view(np.uint8)).sum())
        self.mask_seconds += time.perf_counter() - started
        # The opening text can also occur inside a free string, where every value would
        # pass: there the grammar allows far more tokens than the values start with.
        if len(valid) < 2 or allowed > 8 * len(valid):
            return None
        return ValueCandidates(valid, choice.ends)


def count_forced(guide: GrammarGuide, tokens: Sequence[int]) -> int:
    """How many of `tokens` (one answer as the model wrote it) the guide's grammar forces,
    walked as the decode loop walks them with fast-forward on: the forced run after each
    choice, where the answer agrees with it. The guide is used up."""
    forced = 0
    position = 0
    while position < len(tokens):
        for token in guide.forced_tokens():
            if position >= len(tokens) or tokens[position] != token:
                break
            guide.accept(token)
            forced += 1
            position += 1
        if position < len(tokens):
            guide.accept(tokens[position])
            position += 1
    return forced


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
    if choice == "tool" and forced_tool is not None:
        tools = [tool for tool in tools if tool.name == forced_tool]
    mode = guide_mode(choice)
    try:
        return GrammarGuide(
            tokenizer,
            grammar,
            stop_tokens=stop_tokens,
            required=mode == "forced",
            closers=fmt.closers if mode != "none" else (),
            choices=fmt.value_choices(tools) if mode != "none" else (),
        )
    except GrammarRejected as exc:
        log.warning("tool grammar refused, generating unguided: %s", exc)
        return None
