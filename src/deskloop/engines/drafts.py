"""Drafts from the prompt (issue 21): what followed the last few tokens where they occurred
before is proposed as the next tokens, for the model to verify in one batch.

An agent's calls copy values from the conversation (an element id from an observed tree,
a path, a name, a text to type); once the model has written the first tokens of one, the
prompt holds the rest. The decode loop keeps what the model would have chosen itself
(engines/decoding.py), so a draft changes the cost of an answer, never the answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

# The longest and shortest run of newest tokens looked up; a longer match wins.
LONGEST_MATCH = 3
SHORTEST_MATCH = 1


class PromptLookup:
    """The prompt and the answer so far, searched for the newest tokens' latest earlier
    occurrence."""

    def __init__(
        self,
        prompt: Sequence[int],
        *,
        longest: int = LONGEST_MATCH,
        shortest: int = SHORTEST_MATCH,
    ) -> None:
        self._longest = longest
        self._shortest = shortest
        self._tokens: npt.NDArray[np.int64] = np.empty(max(256, 2 * len(prompt)), dtype=np.int64)
        self._size = 0
        self.extend(prompt)

    def extend(self, tokens: Sequence[int]) -> None:
        """Tokens written after those already known."""
        end = self._size + len(tokens)
        if end > self._tokens.shape[0]:
            grown = np.empty(2 * end, dtype=np.int64)
            grown[: self._size] = self._tokens[: self._size]
            self._tokens = grown
        self._tokens[self._size : end] = tokens
        self._size = end

    def propose(self, limit: int) -> list[int]:
        """Up to `limit` tokens that followed the latest earlier occurrence of the newest
        `longest` tokens, else of fewer, down to `shortest`; empty where none occurred."""
        size = self._size
        if limit <= 0:
            return []
        tokens = self._tokens[:size]
        for length in range(min(self._longest, size - 1), self._shortest - 1, -1):
            # Occurrences that start at 0 .. size - length - 1: each ends before the newest
            # token, so at least one token follows it.
            starts = size - length
            found = tokens[:starts] == tokens[starts]
            for offset in range(1, length):
                found &= tokens[offset : starts + offset] == tokens[starts + offset]
            hits = np.flatnonzero(found)
            if hits.size:
                follows = int(hits[-1]) + length
                proposed: list[int] = tokens[follows : follows + limit].tolist()
                return proposed
        return []


class DraftLength:
    """How many tokens the next draft may propose: after a draft taken whole, two more (up
    to `most`); after one cut short, one more than was taken. A verified token costs about
    as much as a pass of its own on a CPU, so long guesses are kept for runs that copy."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.now = most

    def update(self, drafted: int, accepted: int) -> None:
        if accepted == drafted:
            self.now = min(self.most, self.now + 2)
        else:
            self.now = max(1, accepted + 1)
