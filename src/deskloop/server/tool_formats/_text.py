"""Text around calls: whitespace that only separates calls is not worth a text block."""

from __future__ import annotations

from deskloop.server.tool_formats.base import ParsedEvent, ParsedText

WHITESPACE = " \t\r\n"


def partial_suffix(text: str, marker: str) -> int:
    """Length of the longest end of `text` that is a proper start of `marker` (held back)."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0


class TextSink:
    """Emits text with trailing whitespace held until more text shows it belongs there.

    Whitespace right before or after a call is dropped; a response with no calls keeps
    all of its text, byte for byte.
    """

    def __init__(self, events: list[ParsedEvent]):
        self.events = events
        self.calls = 0
        self._pending = ""
        self._after_call = False

    def add(self, text: str) -> None:
        if self._after_call:
            text = text.lstrip(WHITESPACE)
            if not text:
                return
            self._after_call = False
        body = text.rstrip(WHITESPACE)
        if body:
            self.events.append(ParsedText(self._pending + body))
            self._pending = text[len(body) :]
        else:
            self._pending += text

    def call_opened(self) -> None:
        self._pending = ""

    def call_closed(self) -> None:
        self.calls += 1
        self._after_call = True

    def finish(self) -> None:
        if self.calls == 0 and self._pending:
            self.events.append(ParsedText(self._pending))
        self._pending = ""
