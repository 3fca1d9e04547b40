"""Prompt drafts in the shared decode loop (issue 21), on stand-in models: the tokens that
followed the newest tokens in the prompt are verified in one batch with the token before
them; what comes out is what the model chooses with drafts off, at temperature 0 token for
token and, sampling, in distribution."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest

from deskloop.engines.base import DraftingGuide, Sampling
from deskloop.engines.decoding import Logits
from deskloop.engines.drafts import DraftLength, PromptLookup
from tests.engines.drafting import STOP, VOCAB, FunctionModelEngine, NextLogits, writes
from tests.engines.test_decoding import greedy, run
from tests.engines.test_fast_forward import PlannedGuide

# A prompt that holds a value (5 6 7 8 9 10 11 12) the answer copies after a 3 and a 4.
PROMPT = [1, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 2]
ANSWER = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14]


def engine_for(
    answer: list[int] = ANSWER,
    *,
    drafts: bool,
    prompt: list[int] = PROMPT,
    context_window: int = 64,
) -> FunctionModelEngine:
    engine = FunctionModelEngine(writes(answer, len(prompt)), context_window=context_window)
    engine.prompt_drafts = drafts
    return engine


def both_ways(
    answer: list[int] = ANSWER,
    sampling: Sampling | None = None,
    prompt: list[int] = PROMPT,
    guide: type[PlannedGuide] | None = None,
) -> tuple[FunctionModelEngine, FunctionModelEngine, list[int]]:
    outputs, engines = [], []
    for drafts in (False, True):
        engine = engine_for(answer, drafts=drafts, prompt=prompt)
        planned = guide(answer, set()) if guide is not None else None
        tokens, _ = run(engine, prompt, sampling or greedy(40), planned)
        outputs.append(tokens)
        engines.append(engine)
        assert engine.kv == engine._cached_tokens
    assert outputs[0] == outputs[1]
    return engines[0], engines[1], outputs[1]


def test_the_lookup_proposes_what_followed_the_newest_tokens() -> None:
    lookup = PromptLookup([1, 2, 3, 4, 9, 2, 3, 5, 6])
    assert lookup.propose(4) == []  # `6` did not occur before
    lookup.extend([2, 3])
    assert lookup.propose(2) == [5, 6]  # `2 3`: its newest earlier occurrence
    lookup.extend([4])
    assert lookup.propose(3) == [9, 2, 3]  # `2 3 4`
    assert lookup.propose(0) == []
    assert PromptLookup([7]).propose(3) == []
    # A longer match wins over a newer shorter one.
    assert PromptLookup([7, 8, 1, 5, 9, 8, 1, 6, 7, 8, 1]).propose(1) == [5]


def test_the_draft_length_grows_after_a_whole_draft_and_shrinks_after_a_cut_one() -> None:
    length = DraftLength(8)
    length.update(8, 3)
    assert length.now == 4
    length.update(4, 4)
    assert length.now == 6
    length.update(6, 0)
    assert length.now == 1


def test_a_copied_value_is_drafted_and_the_answer_is_the_same() -> None:
    off, on, tokens = both_ways()
    assert tokens == ANSWER
    assert on.last_decode is not None and off.last_decode is not None
    assert on.last_decode.drafted > 0 and on.last_decode.accepted > 0
    assert off.last_decode.drafted == 0
    # 3 and 4 are not in the prompt; after the 5 the prompt's next eight are drafted and
    # verified with it in one batch: all but the 13 (the model writes 14) are taken.
    assert on.evaluated[1:] == [[3], [4], [5, 6, 7, 8, 9, 10, 11, 12, 13], [14]]
    assert (on.last_decode.drafted, on.last_decode.accepted) == (8, 7)


def test_the_passes_drop_when_a_long_value_is_copied() -> None:
    off, on, _ = both_ways()
    assert off.last_decode is not None and on.last_decode is not None
    assert off.last_decode.passes == len(ANSWER)  # one per token, the last to choose the end
    assert on.last_decode.tokens == off.last_decode.tokens
    # The eight copied tokens cost a few passes: every accepted token saves one.
    saved = off.last_decode.passes - on.last_decode.passes
    assert saved == on.last_decode.accepted >= 6, on.last_decode


def test_a_draft_the_model_turns_down_changes_nothing() -> None:
    # The prompt goes on 8 9 10 after 5 6 7; the model writes 1 2 instead.
    answer = [3, 5, 6, 7, 1, 2, 14]
    _, on, tokens = both_ways(answer)
    assert tokens == answer
    assert on.last_decode is not None
    assert on.last_decode.drafted > on.last_decode.accepted > 0


@pytest.mark.parametrize("limit", range(1, len(ANSWER) + 2))
def test_max_tokens_is_kept_with_drafts(limit: int) -> None:
    _, on, tokens = both_ways(sampling=greedy(limit))
    assert tokens == ANSWER[:limit]
    assert on.last_decode is not None and on.last_decode.tokens == len(tokens)


def test_the_context_window_bounds_a_draft() -> None:
    for window in range(len(PROMPT) + 1, len(PROMPT) + len(ANSWER) + 2):
        outputs = []
        for drafts in (False, True):
            engine = engine_for(drafts=drafts, context_window=window)
            tokens, _ = run(engine, PROMPT, greedy(40))
            assert len(engine.kv) <= window
            outputs.append(tokens)
        assert outputs[0] == outputs[1], window


def test_stop_tokens_in_the_prompt_are_never_drafted() -> None:
    prompt = [5, 6, 7, STOP, 9, 2]
    answer = [5, 6, 7, 8]
    _, on, tokens = both_ways(answer, prompt=prompt)
    assert tokens == answer
    assert all(STOP not in batch[1:] for batch in on.evaluated[1:])


class DraftedPlan(PlannedGuide):
    """A PlannedGuide that judges drafts as the grammar guide does: the plan's next tokens
    as far as they agree, cut after one that leaves a forced run next."""

    def draft_length(self, tokens: Sequence[int]) -> int:
        length = 0
        for offset, token in enumerate(tokens):
            position = self.position + offset
            if position >= len(self.plan) or self.plan[position] != token:
                break
            length += 1
            if position + 1 in self.forced:
                break
        return length


def test_under_a_guide_a_draft_is_cut_to_what_it_accepts() -> None:
    assert isinstance(DraftedPlan([1], set()), DraftingGuide)
    # The prompt goes on 8 9 10 after 5 6 7; the guide allows 5 6 7 1 2 only.
    answer = [3, 5, 6, 7, 1, 2, 14]
    _, on, tokens = both_ways(answer, guide=DraftedPlan)
    assert tokens == answer
    assert on.last_decode is not None
    # The draft after 5 is cut before the 8 the guide refuses (and the one after 1 before
    # the 5): nothing drafted is turned down.
    assert on.last_decode.drafted == on.last_decode.accepted == 3
    assert [5, 6, 7] in on.evaluated and [1, 2] in on.evaluated


def test_forced_tokens_come_from_fast_forward_and_drafts_stop_before_them() -> None:
    answer = [3, 5, 6, 7, 8, 9, 10, 11, 14]
    forced = {6, 7}  # 10 11 are forced after the model's 9
    outputs = []
    for drafts in (False, True):
        engine = engine_for(answer, drafts=drafts)
        tokens, _ = run(engine, PROMPT, greedy(40), DraftedPlan(answer, forced))
        outputs.append(tokens)
        stats = engine.last_decode
        assert stats is not None and stats.forced == 2
    assert outputs[0] == outputs[1] == answer
    # The draft after 5 runs to the 9 after which the run is forced; the run joins the
    # next batch with no draft of its own (the 11 12 the prompt has next are not drafted).
    assert [5, 6, 7, 8, 9] in engine.evaluated
    assert [10, 11] in engine.evaluated


def test_a_guide_that_cannot_judge_drafts_gets_none() -> None:
    for drafts in (False, True):
        engine = engine_for(drafts=drafts)
        tokens, _ = run(engine, PROMPT, greedy(40), PlannedGuide(ANSWER, set()))
        assert tokens == ANSWER
        assert engine.last_decode is not None and engine.last_decode.drafted == 0


def test_a_cancel_during_a_draft_stops_as_any_other() -> None:
    engine = engine_for(drafts=True)
    cancel = threading.Event()
    out = []
    for token in engine.generate(PROMPT, greedy(40), cancel=cancel):
        out.append(token)
        if token == 6:  # the first drafted token taken
            cancel.set()
    assert out == ANSWER[:4]  # nothing after the cancel
    # The cache holds what was written and evaluated, not the draft's rest.
    assert engine.kv == engine._cached_tokens == PROMPT + ANSWER[:4]
    # The next request answers as a fresh engine does.
    tokens, reports = run(engine, PROMPT, greedy(40))
    assert tokens == ANSWER
    assert reports[0].cached_tokens == len(PROMPT) - 1


def test_a_reader_that_stops_mid_draft_leaves_the_cache_consistent() -> None:
    engine = engine_for(drafts=True)
    stream = engine.generate(PROMPT, greedy(40), cancel=threading.Event())
    for token in stream:
        if token == 7:
            break
    stream.close()  # type: ignore[attr-defined]
    assert engine.kv == engine._cached_tokens
    assert engine._cached_tokens[: len(PROMPT) + 4] == PROMPT + ANSWER[:4]
    tokens, _ = run(engine, PROMPT, greedy(40))
    assert tokens == ANSWER


# -- sampling: the accept/reject rule keeps the distribution ------------------------------

# A Markov chain over 1..3 (0, the stop token, and the rest never come out).
CHAIN = np.log(
    np.array(
        [[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4]],
        dtype=np.float64,
    )
)


def markov(context: list[int]) -> Logits:
    logits = np.full(VOCAB, -1e9, dtype=np.float32)
    logits[1:4] = CHAIN[context[-1] - 1]
    return logits


def exact_triples() -> dict[tuple[int, ...], float]:
    """The chance of each first three tokens after a prompt that ends in 1."""
    probabilities = np.exp(CHAIN)
    chances = {}
    for first in range(3):
        for second in range(3):
            for third in range(3):
                chances[(first + 1, second + 1, third + 1)] = (
                    probabilities[0, first]
                    * probabilities[first, second]
                    * probabilities[second, third]
                )
    return chances


def sampled_triples(model: NextLogits, drafts: bool, runs: int) -> Counter[tuple[int, ...]]:
    # Every pair occurs in the prompt: a draft is proposed at every step.
    prompt = [1, 1, 2, 2, 3, 3, 1, 3, 2, 1, 2, 3, 1]
    engine = FunctionModelEngine(model)
    engine.prompt_drafts = drafts
    counts: Counter[tuple[int, ...]] = Counter()
    drafted = accepted = 0
    for seed in range(runs):
        sampling = Sampling(max_tokens=3, temperature=1.0, seed=seed)
        tokens, _ = run(engine, prompt, sampling)
        counts[tuple(tokens)] += 1
        assert engine.last_decode is not None
        drafted += engine.last_decode.drafted
        accepted += engine.last_decode.accepted
    if drafts:
        assert drafted > runs and 0 < accepted < drafted
    return counts


def chi_square(counts: Counter[tuple[int, ...]], chances: dict[tuple[int, ...], float]) -> float:
    runs = sum(counts.values())
    return sum(
        (counts[outcome] - runs * chance) ** 2 / (runs * chance)
        for outcome, chance in chances.items()
    )


def test_sampling_with_drafts_keeps_the_distribution() -> None:
    chances = exact_triples()
    counts = sampled_triples(markov, drafts=True, runs=3000)
    assert set(counts) <= set(chances)
    # 26 degrees of freedom: 54 is the 0.1% critical value; the seeds are fixed.
    assert chi_square(counts, chances) < 54


def test_the_distribution_check_catches_a_biased_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accepting a drafted token whenever the model gives it a fair chance (a wrong rule)
    skews the distribution far past the bound the test above uses."""
    from deskloop.engines.decoding import TokenSampler

    def lenient(self: TokenSampler, logits: Logits, token: int, allowed: object) -> bool:
        return bool(logits[token] > np.log(0.25))

    monkeypatch.setattr(TokenSampler, "accepts", lenient)
    counts = sampled_triples(markov, drafts=True, runs=3000)
    assert chi_square(counts, exact_triples()) > 54
