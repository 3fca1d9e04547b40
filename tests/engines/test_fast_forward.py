"""Fast-forward in the shared decode loop (issue 21), on the arithmetic stand-in model:
what a grammar forces is written without the model, evaluated in one batch with the token
chosen before it (the opener with the prompt), and nothing is evaluated once only an end
token can follow; the output is the same with it off."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from deskloop.engines.base import ForcingGuide, Sampling
from tests.engines.test_decoding import STOP, VOCAB, FakeCountingEngine, greedy, run

PROMPT = [1, 2, 3]


def engine_for(*, fast: bool = True, context_window: int = 64) -> FakeCountingEngine:
    engine = FakeCountingEngine(context_window)
    engine.prefill_chunk = 64  # the prompt in one piece, as it is in these tests
    engine.fast_forward = fast
    return engine


class PlannedGuide:
    """A grammar with one answer: `plan` in order, the tokens at `forced` positions forced
    (the rest the model chooses, among that one token); stopped once the plan is out."""

    def __init__(self, plan: list[int], forced: Iterable[int]) -> None:
        self.plan = plan
        self.forced = set(forced)
        self.position = 0
        self.accepted: list[int] = []

    def allowed_tokens(self) -> npt.NDArray[np.bool_]:
        mask = np.zeros(VOCAB, dtype=np.bool_)
        mask[self.plan[self.position] if self.position < len(self.plan) else STOP] = True
        return mask

    def accept(self, token: int) -> None:
        if self.position == len(self.plan):
            assert token == STOP  # the engine tells the guide the end token too
            return
        assert token == self.plan[self.position], (token, self.position)
        self.accepted.append(token)
        self.position += 1

    def forced_tokens(self) -> list[int]:
        end = self.position
        while end < len(self.plan) and end in self.forced:
            end += 1
        return self.plan[self.position : end]

    def is_stopped(self) -> bool:
        return self.position == len(self.plan)


# The counting model would write 4 5 6 ...; the plan overrides it where it differs.
PLAN = [9, 10, 11, 4, 12, 13, 14, 7, 5]
FORCED = {0, 1, 2, 4, 5, 6}  # an opener of three, then a run of three after the 4


def both_ways(
    plan: list[int], forced: set[int], sampling: Sampling, prompt: list[int] = PROMPT
) -> tuple[FakeCountingEngine, FakeCountingEngine, list[int]]:
    outputs = []
    engines = []
    for fast in (False, True):
        engine = engine_for(fast=fast)
        tokens, _ = run(engine, prompt, sampling, PlannedGuide(plan, forced))
        outputs.append(tokens)
        engines.append(engine)
    assert outputs[0] == outputs[1]
    return engines[0], engines[1], outputs[1]


def test_the_guide_fits_the_protocol() -> None:
    assert isinstance(PlannedGuide(PLAN, FORCED), ForcingGuide)


def test_forced_tokens_come_out_the_same_and_are_evaluated_in_one_batch() -> None:
    off, on, tokens = both_ways(PLAN, FORCED, greedy(20))
    assert tokens == PLAN
    # Off: the prompt, then every token on its own, the last one to choose the end.
    assert off.evaluated == [[1, 2, 3], *[[token] for token in PLAN]]
    # On: the opener with the prompt; 4 with the run after it; 7; then 5 ends the plan and
    # only an end token could follow: no pass for it.
    assert on.evaluated == [[1, 2, 3, 9, 10, 11], [4, 12, 13, 14], [7]]
    assert on.kv == [1, 2, 3, 9, 10, 11, 4, 12, 13, 14, 7]


def test_the_passes_drop_by_the_forced_share() -> None:
    off, on, _ = both_ways(PLAN, FORCED, greedy(20))
    assert off.last_decode is not None and on.last_decode is not None
    assert off.last_decode.passes == len(PLAN)
    assert on.last_decode.forced == len(FORCED)
    assert on.last_decode.tokens == off.last_decode.tokens == len(PLAN)
    # One pass per token the model chose, less the last (nothing is chosen after it).
    assert on.last_decode.passes == len(PLAN) - len(FORCED) - 1
    assert on.last_decode.passes <= off.last_decode.passes * (1 - len(FORCED) / len(PLAN))


def test_max_tokens_cuts_a_forced_run_of_an_optional_answer() -> None:
    for limit in range(1, len(PLAN) + 1):
        _, on, tokens = both_ways(PLAN, FORCED, greedy(limit))
        assert tokens == PLAN[:limit]
        assert on.last_decode is not None and on.last_decode.tokens == limit


def test_the_context_window_bounds_a_forced_run() -> None:
    plan, forced = [9, 10, 11, 12, 13, 14, 15], {1, 2, 3, 4, 5, 6}
    for window in range(len(PROMPT) + 1, len(PROMPT) + len(plan) + 1):
        outputs = []
        for fast in (False, True):
            engine = engine_for(fast=fast, context_window=window)
            tokens, _ = run(engine, PROMPT, greedy(20), PlannedGuide(plan, forced))
            assert len(engine.kv) <= window
            outputs.append(tokens)
        # Never more than the window holds after the prompt; all of it when the run fits.
        assert outputs[1] == plan[: len(outputs[1])]
        assert len(outputs[1]) >= min(len(plan), window - len(PROMPT))


def test_a_wholly_forced_answer_costs_no_pass_after_the_prompt() -> None:
    _, on, tokens = both_ways([9, 10, 11], {0, 1, 2}, greedy(20))
    assert tokens == [9, 10, 11]
    assert on.evaluated == [[1, 2, 3, 9, 10, 11]]
    assert on.last_decode is not None and on.last_decode.passes == 0


def test_the_opener_is_reused_from_the_cache_like_the_prompt() -> None:
    engine = engine_for()
    run(engine, PROMPT, greedy(20), PlannedGuide(PLAN, FORCED))
    engine.evaluated.clear()
    tokens, reports = run(engine, PROMPT, greedy(20), PlannedGuide(PLAN, FORCED))
    assert tokens == PLAN
    # The same request again: the prompt and opener are cached; the last opener token is
    # evaluated again for its logits. The report counts the prompt only.
    assert engine.evaluated[0] == [11]
    assert reports[0].prompt_tokens == 3 and reports[0].cached_tokens == 3


def test_a_cancel_during_a_forced_run_stops_as_any_other() -> None:
    engine = engine_for()
    cancel = threading.Event()
    stream = engine.generate(PROMPT, greedy(20), cancel=cancel, guide=PlannedGuide(PLAN, FORCED))
    out = []
    for token in stream:
        out.append(token)
        if token == 12:  # the first token of the run after the 4
            cancel.set()
    assert out == [9, 10, 11, 4, 12]  # nothing after the cancel
    # The run was never evaluated; the cache holds what it says it holds.
    assert engine.evaluated == [[1, 2, 3, 9, 10, 11]]
    assert engine.kv == engine._cached_tokens
    # The next request reuses everything evaluated before the cancel.
    engine.evaluated.clear()
    tokens, reports = run(engine, [*PROMPT, *out], greedy(3))
    assert reports[0].cached_tokens == len(PROMPT) + 3
    assert engine.evaluated[0] == [4, 12]
    assert tokens == [13, 14, 15]


def test_a_client_that_stops_reading_mid_run_leaves_the_cache_consistent() -> None:
    engine = engine_for()
    stream = engine.generate(
        PROMPT, greedy(20), cancel=threading.Event(), guide=PlannedGuide(PLAN, FORCED)
    )
    for token in stream:
        if token == 13:
            break
    stream.close()  # type: ignore[attr-defined]
    assert engine.kv == engine._cached_tokens == [1, 2, 3, 9, 10, 11]


def test_without_a_forcing_guide_nothing_changes() -> None:
    for fast in (False, True):
        engine = engine_for(fast=fast)
        tokens, _ = run(engine, [12], greedy(10))
        assert tokens == [13, 14, 15]
        assert engine.evaluated == [[12], [13], [14], [15]]
