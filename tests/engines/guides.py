"""Token guides used by the engine tests: a fixed allowed set, and llguidance driven by a JSON schema."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt


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
