"""Stopping a runaway answer early instead of letting it spend the whole `max_tokens`.

Small models loop: SmolLM2-135M typed "message" and then the same words until the answer
was cut at 1,024 tokens (`deskloop demo`, issue 11). Two signs end generation: the same
stretch of characters repeating back to back, and plain text going on where the request
requires a tool call (tool_choice any/tool without a grammar to force one).
"""

from __future__ import annotations

REPEAT_MIN_CHARS = 200  # a repeating stretch at least this long (longer than a rule line)
REPEAT_MIN_TIMES = 4  # and at least this many copies of its unit
REPEAT_MAX_UNIT = 64  # longest repeating unit looked for (a phrase, a JSON fragment)
TEXT_BEFORE_CALL_LIMIT = 400  # characters of text before a required call
CHECK_EVERY = 8  # characters of new output between repetition checks
_TAIL = max(REPEAT_MIN_CHARS, REPEAT_MAX_UNIT * REPEAT_MIN_TIMES) + REPEAT_MAX_UNIT


def repeating_unit(text: str) -> str | None:
    """The unit that `text` ends with repeating (see the limits above), or None."""
    for unit in range(1, REPEAT_MAX_UNIT + 1):
        copies = max(REPEAT_MIN_TIMES, -(-REPEAT_MIN_CHARS // unit))
        span = unit * copies
        if span > len(text):
            break
        piece = text[-unit:]
        if text[-span:] == piece * copies:
            return piece
    return None


class RunawayWatch:
    """Fed each piece of output as it is decoded; says why to stop, or None to go on."""

    def __init__(self, *, call_required: bool) -> None:
        self.call_required = call_required
        self.tail = ""
        self.unchecked = 0
        self.text_before_call = 0
        self.reason: str | None = None

    def push(self, piece: str, *, in_call: bool, calls_done: int) -> str | None:
        if not piece:
            return None
        self.tail = (self.tail + piece)[-_TAIL:]
        self.unchecked += len(piece)
        if self.call_required and not in_call and not calls_done:
            self.text_before_call += len(piece)
            if self.text_before_call > TEXT_BEFORE_CALL_LIMIT:
                self.reason = f"{self.text_before_call} characters of text where a call is required"
                return self.reason
        if self.unchecked >= CHECK_EVERY:
            self.unchecked = 0
            unit = repeating_unit(self.tail)
            if unit is not None:
                self.reason = f"the output repeats {unit[:40]!r}"
                return self.reason
        return None
