"""The decode loop with a call guide: a call closed within the tokens left, and a choice
among a few whole values scored in one tree evaluation (issue 17), on stand-in models."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from deskloop.engines.base import Sampling
from deskloop.engines.decoding import Logits, TokenSampler
from tests.engines.guides import ScriptedCallGuide
from tests.engines.test_decoding import VOCAB, FakeCountingEngine, greedy, run

CLOSING = [14, 14, 14]  # never among the counting model's first ten tokens after 1


class TreeEngine(FakeCountingEngine):
    """The counting stand-in with chosen preferences after some tokens, that also
    evaluates token trees (and records them)."""

    name = "fake-tree"

    def __init__(self, preferences: dict[int, dict[int, float]] | None = None) -> None:
        super().__init__()
        self.preferences = preferences or {}
        self.trees: list[tuple[list[int], list[int]]] = []
        self._last_tree: list[int] = []

    def _after(self, token: int) -> Logits:
        logits = np.zeros(VOCAB, dtype=np.float32)
        chosen = self.preferences.get(token)
        if chosen is None:
            logits[(token + 1) % VOCAB] = 10.0
        else:
            for preferred, value in chosen.items():
                logits[preferred] = value
        return logits

    def _evaluate(self, tokens: Sequence[int]) -> Logits:
        self.evaluated.append(list(tokens))
        self.kv.extend(tokens)
        return self._after(tokens[-1])

    def _evaluate_tree(self, tokens: Sequence[int], parents: Sequence[int]) -> Logits | None:
        self.trees.append((list(tokens), list(parents)))
        self._last_tree = list(tokens)
        return np.stack([self._after(token) for token in tokens])

    def _keep_tree_path(self, path: Sequence[int]) -> None:
        self.kv.extend(self._last_tree[node] for node in path)
        self._last_tree = []


# -- a call that must arrive --------------------------------------------------------------


def test_a_required_call_is_closed_within_max_tokens_by_tokens_the_guide_writes() -> None:
    engine = FakeCountingEngine()
    guide = ScriptedCallGuide(CLOSING, required=True)
    tokens, _ = run(engine, [1], greedy(10), guide)
    assert tokens == [2, 3, 4, 5, 6, 7, 8, *CLOSING]
    assert guide.is_complete()
    # What the guide writes costs no forward pass: nothing after 8 was evaluated.
    assert engine.evaluated[-1] == [8]


def test_a_required_call_is_closed_even_past_a_tiny_max_tokens() -> None:
    guide = ScriptedCallGuide(CLOSING, required=True)
    tokens, _ = run(FakeCountingEngine(), [1], greedy(2), guide)
    assert tokens == CLOSING  # three tokens for max_tokens 2: a forced call always arrives


def test_an_optional_call_is_closed_only_where_it_fits() -> None:
    fits = ScriptedCallGuide(CLOSING, required=False)
    tokens, _ = run(FakeCountingEngine(), [1], greedy(10), fits)
    assert tokens == [2, 3, 4, 5, 6, 7, 8, *CLOSING]
    too_few = ScriptedCallGuide(CLOSING, required=False)
    tokens, _ = run(FakeCountingEngine(), [1], greedy(2), too_few)
    assert tokens == [2, 3]  # cut by max_tokens, as without a guide


def test_the_need_is_not_worked_out_far_from_max_tokens() -> None:
    engine = TreeEngine({12: {2: 10.0}})  # counts 2..12 over and over, never to a stop
    engine._info = replace(engine.info, context_window=512)
    guide = ScriptedCallGuide(CLOSING, required=True)
    tokens, _ = run(engine, [1], greedy(200), guide)
    assert len(tokens) == 200 and tokens[-3:] == CLOSING
    # Planned from 48 tokens before the end on, each time halfway to where it would not fit.
    assert 0 < guide.needs_asked <= 12


def test_a_requested_close_happens_at_the_next_token() -> None:
    engine = FakeCountingEngine()
    guide = ScriptedCallGuide(CLOSING, required=True)
    stream = engine.generate([1], greedy(40), cancel=threading.Event(), guide=guide)
    first = [next(stream), next(stream)]
    guide.close_requested = True  # as the server does for a runaway inside a call
    assert first + list(stream) == [2, 3, *CLOSING]


# -- a choice among whole values ----------------------------------------------------------


def test_whole_values_are_scored_together_not_by_their_first_token() -> None:
    # After the prompt the model slightly prefers 5 to 7, but after 5 it would not write
    # 6, while after 7 it surely writes 8: 7 8 is the likelier value.
    engine = TreeEngine({1: {5: 3.0, 7: 2.5}, 5: {6: 0.0, 11: 5.0}, 7: {8: 6.0}})
    guide = ScriptedCallGuide(CLOSING, required=False, values=[[5, 6], [7, 8]])
    tokens, _ = run(engine, [1], greedy(4), guide)
    assert tokens[:2] == [7, 8]
    # One tree: only 5 and 7 have a token after them; 8 is evaluated as the next input.
    assert engine.trees == [([5, 7], [-1, -1])]
    assert engine.kv[:3] == [1, 7, 8]
    assert tokens == [7, 8, 9, 10]


def test_a_value_that_starts_another_is_chosen_by_how_likely_it_ends() -> None:
    values = [[5], [5, 6]]
    ends_there = TreeEngine({1: {5: 5.0}, 5: {9: 4.0, 6: 1.0}})
    guide = ScriptedCallGuide(CLOSING, required=False, values=values, ends=[9])
    tokens, _ = run(ends_there, [1], greedy(1), guide)
    assert tokens == [5]
    assert ends_there.trees == [([5], [-1])]
    goes_on = TreeEngine({1: {5: 5.0}, 5: {9: 1.0, 6: 4.0}})
    guide = ScriptedCallGuide(CLOSING, required=False, values=values, ends=[9])
    tokens, _ = run(goes_on, [1], greedy(2), guide)
    assert tokens == [5, 6]


def test_values_of_one_token_need_no_tree() -> None:
    engine = TreeEngine({1: {5: 1.0, 7: 2.0}})
    guide = ScriptedCallGuide(CLOSING, required=False, values=[[5], [7]])
    tokens, _ = run(engine, [1], greedy(1), guide)
    assert tokens == [7]
    assert engine.trees == []


def test_an_engine_without_trees_decodes_the_value_token_by_token() -> None:
    guide = ScriptedCallGuide(CLOSING, required=False, values=[[5, 6], [7, 8]])
    tokens, _ = run(FakeCountingEngine(), [1], greedy(10), guide)
    assert tokens[:3] == [2, 3, 4]  # no scoring: the model's own tokens (no mask in this guide)


def test_whole_values_are_drawn_by_their_probability_above_temperature_zero() -> None:
    scores = np.log(np.array([0.7, 0.2, 0.1]))
    sampler = TokenSampler(Sampling(max_tokens=1, temperature=1.0, seed=7))
    draws = [sampler.choose_among(scores) for _ in range(2000)]
    shares = np.bincount(draws, minlength=3) / len(draws)
    assert np.allclose(shares, [0.7, 0.2, 0.1], atol=0.04)
    assert TokenSampler(greedy(1)).choose_among(scores) == 0
