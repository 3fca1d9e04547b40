"""Runaway answers: repeated output and text where a call is required stop generation early."""

from __future__ import annotations

from deskloop.server.runaway import RunawayWatch, repeating_unit


def feed(watch: RunawayWatch, text: str, step: int = 3, *, in_call: bool = False) -> int | None:
    """Characters fed before the watch said stop (None: it never did)."""
    for start in range(0, len(text), step):
        if watch.push(text[start : start + step], in_call=in_call, calls_done=0):
            return start + step
    return None


def test_repeated_words_stop_within_a_few_hundred_characters() -> None:
    text = "hello from deskloop " + "message and " * 200
    stopped = feed(RunawayWatch(call_required=False), text, in_call=True)
    assert stopped is not None and stopped < 320


def test_ordinary_prose_and_a_short_rule_line_go_on() -> None:
    prose = (
        "The settings window has three tabs. The first holds the name and the colour, the "
        "second the sync options, and the third lists the accounts. " * 3
        + "-" * 80
        + " Each account can be removed with the button at the end of its row. "
    )
    assert feed(RunawayWatch(call_required=False), prose) is None
    assert repeating_unit("ab" * 50) is None  # 100 characters: below the stretch length


def test_text_where_a_call_is_required_stops_and_not_when_a_call_is_optional() -> None:
    text = "".join(f"I think I should look at item {n} of the window first. " for n in range(30))
    assert feed(RunawayWatch(call_required=True), text) is not None
    assert feed(RunawayWatch(call_required=False), text) is None
