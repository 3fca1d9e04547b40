"""Tokenizing a conversation's prompt in proportion to what is new since the last one.

An agent's next request repeats the last one's prompt and adds a turn. The tokens of the
shared text are kept: the prompt is cut just before the last control token (`<|im_start|>`)
inside the shared text, where the tokenizer splits first, and only the rest is tokenized.
Whatever cannot be lined up exactly (a changed earlier message, a tokenizer that adds a
space or strips one, an engine that does not offer tail tokenizing) is tokenized whole.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from dataclasses import dataclass

from deskloop.engines.base import LocalEngine


@dataclass(frozen=True)
class _Remembered:
    text: bytes  # the prompt, UTF-8
    tokens: list[int]
    ends: list[int]  # the byte offset in `text` where each token ends


class PromptTokenizer:
    """Tokens for rendered prompts, reusing the tokens of text shared with the last one."""

    def __init__(self, engine: LocalEngine) -> None:
        self._engine = engine
        self._last: _Remembered | None = None
        self._lock = threading.Lock()  # count_tokens and prepare run on worker threads
        self.reused = 0  # tokens the last call took from the prompt before (0: whole)

    def tokenize(self, text: str) -> list[int]:
        if not self._engine.control_tokens:  # nowhere to cut: nothing worth remembering
            return self._engine.tokenize(text)
        data = text.encode("utf-8")
        with self._lock:
            last = self._last
            if last is not None and last.text == data:
                self.reused = len(last.tokens)
                return list(last.tokens)
            joined = self._join(last, data) if last is not None else None
            if joined is None:
                tokens = self._engine.tokenize(text)
                self.reused = 0
                ends = self._token_ends(data, tokens, 0, bos_allowed=True)
            else:
                tokens, ends = joined
            self._last = _Remembered(data, tokens, ends) if ends is not None else None
            return list(tokens)

    def _join(self, last: _Remembered, data: bytes) -> tuple[list[int], list[int]] | None:
        """The last prompt's tokens up to a control token in the shared text, then the new
        text from there tokenized on its own; None where that is not exact."""
        shared = _shared_length(last.text, data)
        # The last token that ends inside the shared text, then back to a control token.
        index = bisect_right(last.ends, shared) - 1
        control = self._engine.control_tokens
        while index > 0 and last.tokens[index] not in control:
            index -= 1
        if index <= 0:
            return None
        cut = last.ends[index - 1]
        tail = self._engine.tokenize_tail(data[cut:].decode("utf-8"))
        if not tail or tail[0] != last.tokens[index]:
            return None  # the tokenizer did not start at the same control token
        tail_ends = self._token_ends(data, tail, cut, bos_allowed=False)
        if tail_ends is None:
            return None
        self.reused = index
        return last.tokens[:index] + tail, last.ends[:index] + tail_ends

    def _token_ends(
        self, data: bytes, tokens: list[int], start: int, *, bos_allowed: bool
    ) -> list[int] | None:
        """Where each token ends in `data` from byte `start`, or None where the tokens'
        bytes are not exactly the text (a space added or dropped)."""
        ends: list[int] = []
        position = start
        token_bytes = self._engine.token_bytes
        for number, token in enumerate(tokens):
            piece = token_bytes(token)
            if data.startswith(piece, position):
                position += len(piece)
            elif not (bos_allowed and number == 0 and position == 0):
                return None  # (a BOS the tokenizer added stands for no text)
            ends.append(position)
        return ends if position == len(data) else None


def _shared_length(first: bytes, second: bytes) -> int:
    """How many leading bytes two texts share (the usual case: one starts with the other)."""
    if second.startswith(first):
        return len(first)
    low, high = 0, min(len(first), len(second))
    while low < high:  # the longest equal prefix, by halving: each step one memcmp
        middle = (low + high + 1) // 2
        if first[:middle] == second[:middle]:
            low = middle
        else:
            high = middle - 1
    return low
