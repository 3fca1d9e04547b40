"""Token guides used by the engine tests: a fixed allowed set, llguidance driven by a JSON
schema, and a scripted call guide for closing calls and choosing whole values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from deskloop.engines.base import ValueCandidates


class FixedSetGuide:
    """Allows only the given tokens at every step and records what it was told."""

    def __init__(self, allowed: Iterable[int], vocab_size: int) -> None:
        self.mask = np.zeros(vocab_size, dtype=np.bool_)
        self.mask[list(allowed)] = True
        self.accepted: list[int] = []

    def allowed_tokens(self) -> npt.NDArray[np.bool_]:
        return self.mask

    def accept(self, token: int) -> None:
        self.accepted.append(token)


class SchemaGuide:
    """An llguidance matcher for a JSON schema, as the server drives it for tool arguments."""

    def __init__(self, tokenizer: Any, schema: dict[str, Any]) -> None:
        import llguidance
        import llguidance.numpy

        grammar = llguidance.LLMatcher.grammar_from_json_schema(schema)
        self._matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
        self._vocab_size = tokenizer.vocab_size
        self._bitmask = llguidance.numpy.allocate_token_bitmask(1, self._vocab_size)
        self._fill = llguidance.numpy.fill_next_token_bitmask

    def allowed_tokens(self) -> npt.NDArray[np.bool_] | None:
        # Once the value is complete the matcher allows only the end-of-sequence tokens.
        self._fill(self._matcher, self._bitmask, 0)
        bits = np.unpackbits(self._bitmask[0].view(np.uint8), bitorder="little")
        mask: npt.NDArray[np.bool_] = bits[: self._vocab_size].astype(np.bool_)
        return mask

    def accept(self, token: int) -> None:
        if not self._matcher.is_stopped():
            assert self._matcher.consume_token(token), self._matcher.get_error()

    @property
    def error(self) -> str:
        return str(self._matcher.get_error())


class ScriptedCallGuide:
    """A `CallGuide` for the decode loop's tests: free choice, a call that `closing` closes,
    and an optional choice among whole values offered after `choice_after` tokens.

    The call counts as closed once its closing tokens have come out in order; until then
    closing needs the rest of them, and `closing_step` writes them all at once.
    """

    def __init__(
        self,
        closing: list[int],
        *,
        required: bool,
        values: list[list[int]] | None = None,
        choice_after: int = 0,
        ends: Iterable[int] = (),
        vocab_size: int = 16,
    ) -> None:
        self.closing = closing
        self.required = required
        self.close_requested = False
        self.values = values
        self.choice_after = choice_after
        self.ends = np.zeros(vocab_size, dtype=np.bool_)
        self.ends[list(ends)] = True
        self.accepted: list[int] = []
        self.progress = 0  # closing tokens out so far, in order
        self.needs_asked = 0

    def allowed_tokens(self) -> npt.NDArray[np.bool_] | None:
        return None

    def accept(self, token: int) -> None:
        self.accepted.append(token)
        if self.progress < len(self.closing) and token == self.closing[self.progress]:
            self.progress += 1
        elif not self.is_complete():
            self.progress = 0

    def is_complete(self) -> bool:
        return self.progress == len(self.closing)

    def closing_need(self, limit: int) -> int | None:
        self.needs_asked += 1
        return None if self.is_complete() else len(self.closing) - self.progress

    def closing_step(self) -> list[int]:
        return [] if self.is_complete() else self.closing[self.progress :]

    def value_choice(self) -> ValueCandidates | None:
        if self.values is None or len(self.accepted) != self.choice_after:
            return None
        return ValueCandidates(self.values, self.ends)
