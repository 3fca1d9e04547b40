"""The llama.cpp engine on the embedded SmolLM2-135M model."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from deskloop.engines import cores, create_engine, llamacpp
from deskloop.engines.base import EngineError, ModelNotFound, PrefillReport, Sampling, TokenGuide
from deskloop.engines.decoding import common_prefix_length
from deskloop.engines.llamacpp import LlamaCppEngine, load_llamacpp_engine
from tests.engines.chat import CAPITAL_QUESTION, STORY_REQUEST, SYSTEM, render, text_of
from tests.engines.guides import FixedSetGuide, SchemaGuide
from tests.engines.trees import same_choice, tree_against_one_by_one

pytestmark = [pytest.mark.slow, pytest.mark.llamacpp]

GREEDY = Sampling(max_tokens=40, temperature=0)


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaCppEngine]:
    loaded = load_llamacpp_engine("")
    yield loaded
    loaded.close()


def generate(
    engine: LlamaCppEngine,
    prompt: list[int],
    sampling: Sampling = GREEDY,
    guide: TokenGuide | None = None,
) -> tuple[list[int], PrefillReport]:
    reports: list[PrefillReport] = []
    stream = engine.generate(
        prompt, sampling, cancel=threading.Event(), guide=guide, on_prefill=reports.append
    )
    tokens = list(stream)
    assert len(reports) == 1
    return tokens, reports[0]


def test_registry_loads_the_embedded_model_with_its_gguf_metadata() -> None:
    engine = create_engine("llamacpp", "", context_window=2048)
    assert isinstance(engine, LlamaCppEngine)
    info = engine.info
    assert info.model_id == "smollm2-135m-instruct"
    assert info.context_window == 2048
    assert info.architecture == "llama"
    assert info.chat_template is not None and "<|im_start|>" in info.chat_template
    assert info.eos_token == "<|im_end|>"
    assert engine.vocab_size == 49152
    assert {0, 2} <= engine.stop_token_ids  # <|endoftext|> and <|im_end|>
    engine.close()
    with pytest.raises(EngineError, match="closed"):
        engine.tokenize("after close")


def test_default_context_window_is_the_trained_one(engine: LlamaCppEngine) -> None:
    assert engine.info.context_window == 8192


def test_tokenize_parses_special_tokens_without_adding_bos(engine: LlamaCppEngine) -> None:
    text = "<|im_start|>user\nHello, wörld 😀<|im_end|>\n"
    tokens = engine.tokenize(text)
    assert tokens[0] == 1 and tokens.count(2) == 1  # <|im_start|>, <|im_end|> as single tokens
    assert engine.tokenize("Hello")[0] != 1
    assert text_of(engine, tokens) == text
    assert engine.count_tokens(text) == len(tokens)


def test_greedy_answer_is_sensible_deterministic_and_ends_without_the_stop_token(
    engine: LlamaCppEngine,
) -> None:
    prompt = engine.tokenize(render(engine, CAPITAL_QUESTION))
    first, _ = generate(engine, prompt)
    second, _ = generate(engine, prompt)
    assert first == second
    assert "Paris" in text_of(engine, first)
    assert len(first) < GREEDY.max_tokens
    assert not set(first) & engine.stop_token_ids


def test_stops_at_max_tokens(engine: LlamaCppEngine) -> None:
    prompt = engine.tokenize(render(engine, STORY_REQUEST))
    tokens, _ = generate(engine, prompt, Sampling(max_tokens=5, temperature=0))
    assert len(tokens) == 5


def test_follow_up_turn_reuses_the_cached_prefix(engine: LlamaCppEngine) -> None:
    first_prompt = engine.tokenize(render(engine, CAPITAL_QUESTION))
    answer, _ = generate(engine, first_prompt)
    conversation = [
        *CAPITAL_QUESTION,
        {"role": "assistant", "content": text_of(engine, answer)},
        {"role": "user", "content": "And of Italy?"},
    ]
    follow_up = engine.tokenize(render(engine, conversation))
    tokens, report = generate(engine, follow_up)
    assert report.prompt_tokens == len(follow_up)
    # The cache held the first prompt and every answer token (the stop token was never fed).
    assert len(answer) < GREEDY.max_tokens
    assert report.cached_tokens == common_prefix_length(first_prompt + answer, follow_up)
    assert report.cached_tokens > len(first_prompt)
    assert "Rome" in text_of(engine, tokens)


def test_cancel_stops_generation_and_the_engine_answers_as_a_fresh_one(
    engine: LlamaCppEngine,
) -> None:
    prompt = engine.tokenize(render(engine, STORY_REQUEST))
    cancel = threading.Event()
    stream = engine.generate(prompt, Sampling(max_tokens=200, temperature=0), cancel=cancel)
    started = [next(stream) for _ in range(3)]
    cancel.set()
    assert list(stream) == []

    after, report = generate(engine, prompt, Sampling(max_tokens=12, temperature=0))
    assert report.cached_tokens == len(prompt) - 1
    fresh = load_llamacpp_engine("")
    try:
        expected, fresh_report = generate(fresh, prompt, Sampling(max_tokens=12, temperature=0))
    finally:
        fresh.close()
    assert fresh_report.cached_tokens == 0
    assert after == expected
    assert after[:3] == started


def test_fixed_set_guide_is_obeyed(engine: LlamaCppEngine) -> None:
    allowed = {*engine.tokenize(" yes"), *engine.tokenize(" no")}
    guide = FixedSetGuide(allowed, engine.vocab_size)
    prompt = engine.tokenize(render(engine, STORY_REQUEST))
    tokens, _ = generate(engine, prompt, Sampling(max_tokens=3, temperature=0), guide=guide)
    assert len(tokens) == 3 and set(tokens) <= allowed
    assert guide.accepted[: len(tokens)] == tokens


def test_json_schema_guide_through_llguidance_gives_valid_arguments(
    engine: LlamaCppEngine,
) -> None:
    schema = {
        "type": "object",
        "properties": {"button": {"enum": ["ok", "cancel"]}, "double": {"type": "boolean"}},
        "required": ["button", "double"],
        "additionalProperties": False,
    }
    tokenizer = engine.guidance_tokenizer()
    assert tokenizer.vocab_size == engine.vocab_size
    guide = SchemaGuide(tokenizer, schema)
    request = [SYSTEM, {"role": "user", "content": "Click the OK button once. Answer with JSON."}]
    prompt = engine.tokenize(render(engine, request))
    tokens, _ = generate(engine, prompt, Sampling(max_tokens=30, temperature=0), guide=guide)
    arguments = json.loads(text_of(engine, tokens))
    assert arguments["button"] in ("ok", "cancel")
    assert isinstance(arguments["double"], bool)
    assert set(arguments) == {"button", "double"}


def test_a_tree_of_values_is_evaluated_in_one_batch_as_each_alone(
    engine: LlamaCppEngine,
) -> None:
    pairs, kept, afresh = tree_against_one_by_one(engine)
    for key, (in_tree, alone) in pairs.items():
        assert np.array_equal(in_tree, alone), key
    assert same_choice(kept, afresh)
    # The tree's sequences are gone; the answer's own runs on from the kept path.
    import llama_cpp

    memory = llama_cpp.llama_get_memory(engine._context)
    assert all(llama_cpp.llama_memory_seq_pos_max(memory, seq) == -1 for seq in range(1, 4))
    assert llama_cpp.llama_memory_seq_pos_max(memory, 0) == len(engine._cached_tokens) - 1


def test_seeded_sampling_repeats_and_different_seeds_differ(engine: LlamaCppEngine) -> None:
    prompt = engine.tokenize(render(engine, STORY_REQUEST))

    def sample(seed: int) -> list[int]:
        sampling = Sampling(max_tokens=12, temperature=1.0, top_k=50, top_p=0.95, seed=seed)
        return generate(engine, prompt, sampling)[0]

    assert sample(7) == sample(7)
    assert len({tuple(sample(seed)) for seed in (1, 2, 3)}) > 1


def test_missing_file_is_reported() -> None:
    with pytest.raises(ModelNotFound, match="no file or folder"):
        load_llamacpp_engine("/nonexistent/model.gguf")
    with pytest.raises(ModelNotFound, match="no GGUF file"):
        load_llamacpp_engine("no-such-model")


def test_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("just some text")
    with pytest.raises(ModelNotFound, match="not a GGUF file"):
        load_llamacpp_engine(str(not_gguf))


def test_damaged_gguf_is_an_engine_error(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.gguf"
    damaged.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 64)
    with pytest.raises(EngineError):
        load_llamacpp_engine(str(damaged))


def test_mlx_folder_is_pointed_to_the_mlx_engine(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotFound, match="--engine mlx"):
        load_llamacpp_engine(str(tmp_path))


def test_whole_values_are_scored_on_the_logits_before_their_tree(engine: LlamaCppEngine) -> None:
    """llama.cpp's logits are a view of a buffer the tree's own pass refills: the values'
    first tokens must be scored on the logits from before it (a copy), as one by one."""
    from deskloop.engines.base import ValueCandidates
    from deskloop.engines.decoding import TokenSampler

    question = "Which element is the OK button? e101, e202 or e303?"
    prompt = engine.tokenize(render(engine, [{"role": "user", "content": question}]))
    values = [engine.tokenize(text) for text in ("e101", "e202", "e303")]
    assert all(len(value) > 1 for value in values)

    def log_probability(tokens: list[int]) -> float:
        engine._forget_from(0)
        logits = np.array(engine._extend(prompt))
        total = 0.0
        for token in tokens:
            shifted = logits.astype(np.float64) - logits.max()
            total += float(shifted[token] - np.log(np.exp(shifted).sum()))
            logits = np.array(engine._extend([token]))
        return total

    expected = [log_probability(value) for value in values]
    engine._forget_from(0)
    view = engine._extend(prompt)
    scored: list[np.ndarray] = []
    sampler = TokenSampler(Sampling(max_tokens=8, temperature=0))
    choose_among = sampler.choose_among

    def recorded(scores: np.ndarray) -> int:
        scored.append(np.array(scores))
        return choose_among(scores)

    sampler.choose_among = recorded  # type: ignore[method-assign]
    ends = np.zeros(engine.vocab_size, dtype=np.bool_)
    chosen = engine._choose_whole(ValueCandidates(values, ends), view, sampler)
    assert chosen is not None
    assert np.allclose(scored[0], expected, atol=0.05), (scored[0], expected)
    engine._forget_from(0)


def anonymous_resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no RssAnon in /proc/self/status")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="resident memory from /proc")
def test_a_new_context_keeps_no_memory_for_its_empty_cache_and_answers_the_same(
    engine: LlamaCppEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """llama.cpp clears the whole KV cache as it makes a context (189 MB for SmolLM2 at
    8192 tokens); deskloop hands those zero pages back, and nothing it answers changes."""
    prompt = engine.tokenize(render(engine, STORY_REQUEST))
    answer, _ = generate(engine, prompt)

    def grown_by_loading() -> tuple[float, list[int]]:
        before = anonymous_resident_mb()
        loaded = load_llamacpp_engine("", context_window=8192)
        grown = anonymous_resident_mb() - before
        try:
            return grown, generate(loaded, prompt)[0]
        finally:
            loaded.close()

    handed_back, answer_handed_back = grown_by_loading()
    monkeypatch.setattr(llamacpp, "zero_pages_handed_back", contextlib.nullcontext)
    kept, answer_kept = grown_by_loading()
    # Most of the 189 MB stays out of memory (the rest of loading varies by some MB).
    assert kept - handed_back > 120, (handed_back, kept)
    assert answer_handed_back == answer_kept == answer


def test_a_cached_prompt_is_answered_from_the_same_logits_as_a_fresh_one(
    engine: LlamaCppEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of 64 rows or more takes llama.cpp's tiled flash attention, which rounds
    differently from a smaller one (but the same for a row whatever else the batch holds):
    a request asked again evaluates its last 64 rows again, so it answers twice alike."""
    keeper = (
        "Write a story about a lighthouse keeper on a northern island who keeps a logbook of "
        "every ship that passes, the weather each morning, and the birds that rest on the "
        "gallery rail; one winter a ship passes that is in no register, and the keeper rows "
        "out to meet it. Tell it in the first person, in the keeper's own plain words."
    )
    prompt = engine.tokenize(render(engine, [SYSTEM, {"role": "user", "content": keeper}]))
    seen: list[np.ndarray] = []
    evaluate = engine._evaluate

    def recording(tokens: list[int]) -> np.ndarray:
        logits = evaluate(tokens)
        seen.append(np.array(logits))
        return logits

    monkeypatch.setattr(engine, "_evaluate", recording)
    fresh, report = generate(engine, prompt, Sampling(max_tokens=1, temperature=0))
    assert report.prompt_tokens - report.cached_tokens >= 64
    first_choice_fresh = seen[-1]
    cached, report = generate(engine, prompt, Sampling(max_tokens=1, temperature=0))
    assert report.cached_tokens == len(prompt) - 64
    assert np.array_equal(seen[-1], first_choice_fresh)
    assert cached == fresh


def test_a_request_takes_every_core_when_what_ran_while_it_waited_has_ended(
    engine: LlamaCppEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget = engine._budget
    if budget is None or budget.cores < 2:
        pytest.skip("needs the adaptive thread count and two cores")
    # The last look, just now, saw the others busy (another server answering) ...
    monkeypatch.setattr(budget, "_last", budget._sample())
    monkeypatch.setattr(budget, "_others", float(budget.cores))
    monkeypatch.setattr(budget, "_free", 1)
    # ... and they have finished by the time this request comes.
    monkeypatch.setattr(cores, "_others_running_now", lambda: 0)
    chosen: list[int] = []
    fit = engine._fit_threads

    def recording() -> None:
        fit()
        chosen.append(engine._threads)

    monkeypatch.setattr(engine, "_fit_threads", recording)
    prompt = engine.tokenize(render(engine, CAPITAL_QUESTION))
    generate(engine, prompt, Sampling(max_tokens=1, temperature=0))
    assert chosen[0] == budget.cores
