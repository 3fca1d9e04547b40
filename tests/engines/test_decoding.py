"""The decode loop shared by the local engines, driven by an arithmetic stand-in model (no weights)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from deskloop.engines.base import (
    EngineError,
    ModelInfo,
    ModelNotFound,
    PrefillReport,
    Sampling,
    TokenGuide,
)
from deskloop.engines.decoding import (
    Logits,
    PrefixCachingEngine,
    TokenSampler,
    common_prefix_length,
    prefill_pieces,
)
from deskloop.engines.gguf_header import read_gguf_scalars
from deskloop.engines.models import embedded_model_path
from tests.engines.guides import FixedSetGuide

VOCAB = 16
STOP = 0


class FakeCountingEngine(PrefixCachingEngine):
    """A test stand-in whose "model" always prefers the last token plus one; it logs what it evaluates."""

    name = "fake-counting"
    prefill_chunk = 4

    def __init__(self, context_window: int = 64) -> None:
        super().__init__()
        self.evaluated: list[list[int]] = []
        # What a real cache would hold, kept independently of the base class.
        self.kv: list[int] = []
        self.untrimmable = False  # like a recurrent model's state: cannot be cut back
        self.fail_on: int | None = None  # evaluating this token raises, as a library failure would
        self._info = ModelInfo(model_id="fake", context_window=context_window, chat_template=None)

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def vocab_size(self) -> int:
        return VOCAB

    @property
    def stop_token_ids(self) -> frozenset[int]:
        return frozenset({STOP})

    def tokenize(self, text: str) -> list[int]:
        return [int(part) for part in text.split()]

    def token_bytes(self, token: int) -> bytes:
        return str(token).encode()

    def _drop_cache_after(self, keep: int) -> int:
        if self.untrimmable:
            self.kv.clear()
            return 0
        del self.kv[keep:]
        return keep

    def _release(self) -> None:
        self.kv.clear()

    def _evaluate(self, tokens: Sequence[int]) -> Logits:
        self.evaluated.append(list(tokens))
        self.kv.extend(tokens)
        if self.fail_on in tokens:
            raise RuntimeError("llama_decode returned 1")
        logits = np.zeros(VOCAB, dtype=np.float32)
        logits[(tokens[-1] + 1) % VOCAB] = 10.0
        return logits


def greedy(max_tokens: int) -> Sampling:
    return Sampling(max_tokens=max_tokens, temperature=0)


def run(
    engine: PrefixCachingEngine,
    prompt: list[int],
    sampling: Sampling,
    guide: TokenGuide | None = None,
) -> tuple[list[int], list[PrefillReport]]:
    reports: list[PrefillReport] = []
    stream = engine.generate(
        prompt, sampling, cancel=threading.Event(), guide=guide, on_prefill=reports.append
    )
    return list(stream), reports


def test_common_prefix_length() -> None:
    assert common_prefix_length([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix_length([1, 2], [1, 2, 3]) == 2
    assert common_prefix_length([], [1]) == 0


def test_stops_before_the_stop_token_and_does_not_yield_it() -> None:
    engine = FakeCountingEngine()
    tokens, reports = run(engine, [12], greedy(10))
    assert tokens == [13, 14, 15]  # 15 + 1 wraps to 0, the stop token
    assert reports == [PrefillReport(1, 0, reports[0].seconds)]


def test_stops_at_max_tokens() -> None:
    tokens, _ = run(FakeCountingEngine(), [1], greedy(3))
    assert tokens == [2, 3, 4]


def test_follow_up_prefills_only_what_differs_from_the_cache() -> None:
    engine = FakeCountingEngine()
    run(engine, [1, 2, 3, 4, 5, 6], greedy(2))  # cache now holds 1..6 and the fed token 7
    engine.evaluated.clear()
    _, reports = run(engine, [1, 2, 3, 4, 9, 9, 9], greedy(1))
    assert reports[0].cached_tokens == 4
    assert reports[0].prompt_tokens == 7
    assert engine.evaluated == [[9, 9, 9]]
    assert engine.kv == [1, 2, 3, 4, 9, 9, 9]


def test_a_prompt_is_evaluated_in_chunks_and_what_was_forced_after_it_in_exact_batches() -> None:
    assert list(prefill_pieces(0, 10, 10, 4, 3)) == [(0, 4), (4, 8), (8, 10)]
    assert list(prefill_pieces(0, 8, 12, 4, 3)) == [(0, 4), (4, 8), (8, 11), (11, 12)]
    assert list(prefill_pieces(9, 8, 12, 4, 3)) == [(9, 12)]
    assert list(prefill_pieces(0, 3, 3, 512, 63)) == [(0, 3)]


def test_a_prompt_asked_again_is_evaluated_in_as_wide_a_batch_as_the_first_time() -> None:
    engine = FakeCountingEngine()
    engine.prefill_chunk, engine.exact_batch = 8, 3  # batches of 4 rows or more are wide
    prompt = [1, 2, 3, 4, 5, 6, 7, 9, 1, 2, 3, 4, 5]
    first, _ = run(engine, prompt, greedy(2))
    assert engine.evaluated[:2] == [prompt[:8], prompt[8:]]  # no row of the last batch alone
    engine.evaluated.clear()
    again, reports = run(engine, prompt, greedy(2))
    assert again == first
    # Its last four rows again, in one wide batch, rather than its last token alone.
    assert engine.evaluated[0] == prompt[-4:]
    assert reports[0].cached_tokens == len(prompt) - 4

    # A prompt whose last rows came in a narrow batch: its last token alone is as narrow.
    longer = [*prompt, 6, 9]
    run(engine, longer, greedy(1))
    engine.evaluated.clear()
    _, reports = run(engine, longer, greedy(1))
    assert engine.evaluated[0] == [9]
    assert reports[0].cached_tokens == len(longer) - 1

    # Sampling at a temperature without a seed is not reproducible: no rows again.
    engine.evaluated.clear()
    run(engine, prompt, Sampling(max_tokens=1, temperature=0.7))
    assert engine.evaluated[0] == prompt[-1:]


def test_identical_prompt_reevaluates_only_its_last_token() -> None:
    engine = FakeCountingEngine()
    first, _ = run(engine, [5, 6, 7], greedy(3))
    engine.evaluated.clear()
    again, reports = run(engine, [5, 6, 7], greedy(3))
    assert again == first
    assert reports[0].cached_tokens == 2
    assert engine.evaluated[0] == [7]


def test_a_cache_that_cannot_be_cut_back_is_prefilled_again() -> None:
    engine = FakeCountingEngine()
    engine.untrimmable = True
    run(engine, [1, 2, 3], greedy(2))
    tokens, reports = run(engine, [1, 2, 9], greedy(1))
    assert tokens == [10]
    assert reports[0].cached_tokens == 0
    assert engine.kv == [1, 2, 9]


def test_long_prompt_is_prefilled_in_chunks() -> None:
    engine = FakeCountingEngine()
    run(engine, list(range(1, 11)), greedy(1))
    assert engine.evaluated == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]


def test_cancel_stops_at_the_next_token_and_leaves_the_cache_consistent() -> None:
    engine = FakeCountingEngine()
    cancel = threading.Event()
    stream = engine.generate([1], greedy(10), cancel=cancel)
    assert [next(stream), next(stream)] == [2, 3]
    cancel.set()
    assert list(stream) == []
    tokens, reports = run(engine, [1, 2, 3], greedy(2))
    assert tokens == [4, 5]
    assert reports[0].cached_tokens == 2
    assert engine.kv == [1, 2, 3, 4]


def test_cancel_before_prefill_reports_nothing() -> None:
    engine = FakeCountingEngine()
    cancel = threading.Event()
    cancel.set()
    reports: list[PrefillReport] = []
    assert list(engine.generate([1, 2], greedy(5), cancel=cancel, on_prefill=reports.append)) == []
    assert reports == []


def test_guide_mask_is_obeyed_and_told_every_choice() -> None:
    engine = FakeCountingEngine()
    guide = FixedSetGuide({7, 9}, VOCAB)  # the model wants 2, 3, ...; ties go to the lower id
    tokens, _ = run(engine, [1], greedy(4), guide=guide)
    assert tokens == [7, 7, 7, 7]
    assert guide.accepted == [7, 7, 7, 7]


def test_library_failure_is_an_engine_error_and_the_next_call_starts_clean() -> None:
    engine = FakeCountingEngine()
    engine.fail_on = 5
    with pytest.raises(EngineError, match="fake-counting engine failed while generating"):
        run(engine, [1, 2], greedy(10))
    engine.fail_on = None
    tokens, reports = run(engine, [1, 2], greedy(2))
    assert tokens == [3, 4]
    assert reports[0].cached_tokens == 0
    assert engine.kv == [1, 2, 3]


def test_closed_engine_refuses_to_generate() -> None:
    engine = FakeCountingEngine()
    engine.close()
    with pytest.raises(EngineError, match="closed"):
        engine.generate([1], greedy(1), cancel=threading.Event())


def test_prompt_longer_than_the_context_window_is_refused() -> None:
    engine = FakeCountingEngine(context_window=8)
    with pytest.raises(EngineError, match="prompt is too long: 9 tokens > 8 maximum"):
        engine.generate(list(range(1, 10)), greedy(1), cancel=threading.Event())


def test_generation_stops_when_the_context_window_is_full() -> None:
    engine = FakeCountingEngine(context_window=5)
    tokens, _ = run(engine, [1, 2, 3], greedy(10))
    assert tokens == [4, 5, 6]
    assert len(engine.kv) <= 5


def test_sampler_greedy_at_temperature_zero() -> None:
    logits = np.array([0.1, 3.0, 2.9, -1.0], dtype=np.float32)
    sampler = TokenSampler(Sampling(max_tokens=1, temperature=0, top_k=3, top_p=0.5))
    assert {sampler.choose(logits) for _ in range(20)} == {1}


def test_sampler_mask_removes_the_favourite() -> None:
    logits = np.array([0.1, 3.0, 2.9, -1.0], dtype=np.float32)
    allowed = np.array(
        [True, False, True, True, False, False]
    )  # longer than the vocabulary is fine
    assert TokenSampler(Sampling(max_tokens=1, temperature=0)).choose(logits, allowed) == 2


def test_sampler_refuses_an_empty_mask() -> None:
    sampler = TokenSampler(Sampling(max_tokens=1, temperature=1.0))
    with pytest.raises(EngineError, match="allowed no token"):
        sampler.choose(np.zeros(4, dtype=np.float32), np.zeros(4, dtype=np.bool_))


def test_sampler_top_k_keeps_only_the_k_best() -> None:
    logits = np.array([1.0, 1.1, 1.2, 5.0, 4.9], dtype=np.float32)
    sampler = TokenSampler(Sampling(max_tokens=1, temperature=1.0, top_k=2, seed=3))
    assert {sampler.choose(logits) for _ in range(200)} == {3, 4}


def test_sampler_top_p_keeps_the_smallest_set_reaching_p() -> None:
    # probabilities about 0.574, 0.211, 0.211, 0.004: top_p 0.9 keeps the first three
    logits = np.array([2.0, 1.0, 1.0, -3.0], dtype=np.float32)
    sampler = TokenSampler(Sampling(max_tokens=1, temperature=1.0, top_p=0.9, seed=5))
    assert {sampler.choose(logits) for _ in range(300)} == {0, 1, 2}
    narrow = TokenSampler(Sampling(max_tokens=1, temperature=1.0, top_p=0.5, seed=5))
    assert {narrow.choose(logits) for _ in range(50)} == {0}


def test_sampler_same_seed_same_choices() -> None:
    logits = np.linspace(0, 1, 50).astype(np.float32)
    first = TokenSampler(Sampling(max_tokens=1, temperature=1.0, seed=42))
    second = TokenSampler(Sampling(max_tokens=1, temperature=1.0, seed=42))
    assert [first.choose(logits) for _ in range(30)] == [second.choose(logits) for _ in range(30)]


def test_gguf_header_gives_the_embedded_models_context_length() -> None:
    values = read_gguf_scalars(
        embedded_model_path(), {"general.architecture", "llama.context_length"}
    )
    assert values == {"general.architecture": "llama", "llama.context_length": 8192}


def test_gguf_header_refuses_other_files(tmp_path: Path) -> None:
    other = tmp_path / "model.gguf"
    other.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ModelNotFound, match="not a GGUF file"):
        read_gguf_scalars(other, {"general.architecture"})
