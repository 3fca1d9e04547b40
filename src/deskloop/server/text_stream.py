"""Turning a stream of token bytes into text, with stop sequences honoured."""

from __future__ import annotations

import codecs
from dataclasses import dataclass


class Utf8Joiner:
    """Decodes token bytes incrementally: a character split across tokens waits for its end.

    Bytes that can never be UTF-8 become U+FFFD where they stand; the start of a character
    still waiting for its end when generation stops (cut by `max_tokens`) is left out.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, data: bytes) -> str:
        return self._decoder.decode(data)

    def flush(self) -> str:
        """End of the answer: what is still held is an unfinished character; drop it."""
        self._decoder.reset()
        return ""


@dataclass(frozen=True)
class StopMatch:
    sequence: str


class StopSequenceFilter:
    """Passes text through until a stop sequence appears; never emits any part of one.

    Text that could still be the start of a stop sequence is held back until the next
    piece decides it.
    """

    def __init__(self, sequences: list[str] | None):
        self._sequences = [s for s in (sequences or []) if s]
        self._pending = ""
        self.matched: StopMatch | None = None

    def push(self, text: str) -> str:
        if not self._sequences:
            return text
        if self.matched is not None:
            return ""
        buffer = self._pending + text
        first: tuple[int, str] | None = None
        for sequence in self._sequences:
            at = buffer.find(sequence)
            if at >= 0 and (first is None or at < first[0]):
                first = (at, sequence)
        if first is not None:
            self.matched = StopMatch(first[1])
            self._pending = ""
            return buffer[: first[0]]
        hold = self._longest_partial_suffix(buffer)
        self._pending = buffer[len(buffer) - hold :] if hold else ""
        return buffer[: len(buffer) - hold]

    def flush(self) -> str:
        pending, self._pending = self._pending, ""
        return "" if self.matched else pending

    def _longest_partial_suffix(self, buffer: str) -> int:
        """Length of the longest tail of `buffer` that is a proper prefix of a stop sequence."""
        longest = 0
        for sequence in self._sequences:
            for size in range(min(len(sequence) - 1, len(buffer)), longest, -1):
                if buffer.endswith(sequence[:size]):
                    longest = size
                    break
        return longest
