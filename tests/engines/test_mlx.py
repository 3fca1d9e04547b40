"""The MLX engine on the CPU with the embedded SmolLM2-135M GGUF (short prompts: without OpenBLAS it
prefills about 10 tokens/s)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from deskloop.engines import create_engine
from deskloop.engines.base import EngineError, ModelNotFound, PrefillReport, Sampling, TokenGuide
from deskloop.engines.llamacpp import LlamaCppEngine, load_llamacpp_engine
from deskloop.engines.mlx import MlxEngine, load_mlx_engine
from deskloop.engines.models import embedded_model_path
from tests.engines.chat import CAPITAL_QUESTION, STORY_REQUEST, SYSTEM, render, text_of
from tests.engines.guides import FixedSetGuide, SchemaGuide
from tests.engines.mlx_folder import export_mlx_folder
from tests.engines.trees import tree_against_one_by_one

pytestmark = [pytest.mark.slow, pytest.mark.mlx]

SHORT_CHAT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
SHORT_STORY = "<|im_start|>user\nTell a story.<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def engine() -> Iterator[MlxEngine]:
    loaded = load_mlx_engine("")
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def llama() -> Iterator[LlamaCppEngine]:
    loaded = load_llamacpp_engine("")
    yield loaded
    loaded.close()


def generate(
    engine: MlxEngine | LlamaCppEngine,
    prompt: list[int],
    sampling: Sampling,
    guide: TokenGuide | None = None,
) -> tuple[list[int], PrefillReport]:
    reports: list[PrefillReport] = []
    stream = engine.generate(
        prompt, sampling, cancel=threading.Event(), guide=guide, on_prefill=reports.append
    )
    tokens = list(stream)
    assert len(reports) == 1
    return tokens, reports[0]


def test_registry_loads_the_gguf_with_its_metadata() -> None:
    engine = create_engine("mlx", "", context_window=1024)
    assert isinstance(engine, MlxEngine)
    assert engine.info.model_id == "smollm2-135m-instruct"
    assert engine.info.context_window == 1024
    assert engine.info.chat_template is not None and "<|im_start|>" in engine.info.chat_template
    assert engine.info.eos_token == "<|im_end|>"
    assert engine.vocab_size == 49152
    assert {0, 2} <= engine.stop_token_ids
    engine.close()
    with pytest.raises(EngineError, match="closed"):
        engine.generate([1, 2], Sampling(max_tokens=1), cancel=threading.Event())


@pytest.mark.llamacpp
def test_tokenizer_agrees_with_llama_cpp_on_a_rendered_chat_prompt(
    engine: MlxEngine, llama: LlamaCppEngine
) -> None:
    conversation = [
        *CAPITAL_QUESTION,
        {
            "role": "assistant",
            "content": "Paris — 2,141,000 people (2019). Ça va? 😀\n\n  def f(x): return x**2",
        },
        {"role": "user", "content": "Thanks!  What's   next?\t<tab> 12345"},
    ]
    prompt = render(engine, conversation)
    assert engine.tokenize(prompt) == llama.tokenize(prompt)
    assert engine.tokenize(render(engine, STORY_REQUEST)) == llama.tokenize(
        render(llama, STORY_REQUEST)
    )
    assert text_of(engine, engine.tokenize(prompt)) == prompt


@pytest.mark.llamacpp
def test_token_bytes_agree_with_llama_cpp_for_the_whole_vocabulary(
    engine: MlxEngine, llama: LlamaCppEngine
) -> None:
    differing = [
        token
        for token in range(engine.vocab_size)
        if engine.token_bytes(token) != llama.token_bytes(token)
    ]
    assert differing == []


@pytest.mark.llamacpp
def test_greedy_answer_matches_llama_cpp(engine: MlxEngine, llama: LlamaCppEngine) -> None:
    prompt = engine.tokenize(SHORT_CHAT)
    sampling = Sampling(max_tokens=8, temperature=0)
    ours, _ = generate(engine, prompt, sampling)
    theirs, _ = generate(llama, prompt, sampling)
    assert "Paris" in text_of(engine, ours)
    assert ours[:5] == theirs[:5]


def test_greedy_is_deterministic_and_reuses_the_prompt_cache(engine: MlxEngine) -> None:
    prompt = engine.tokenize(SHORT_STORY)
    sampling = Sampling(max_tokens=4, temperature=0)
    first, _ = generate(engine, prompt, sampling)
    second, report = generate(engine, prompt, sampling)
    assert first == second
    assert len(first) == 4  # stopped at max_tokens
    assert report.cached_tokens == len(prompt) - 1


def test_follow_up_prefills_only_after_the_shared_prefix(engine: MlxEngine) -> None:
    prompt = engine.tokenize(SHORT_STORY)
    answer, _ = generate(engine, prompt, Sampling(max_tokens=3, temperature=0))
    follow_up = [*prompt, *answer, *engine.tokenize(" More.")]
    _, report = generate(engine, follow_up, Sampling(max_tokens=1, temperature=0))
    # The last answer token was never fed (generation stopped at max_tokens right after it).
    assert report.cached_tokens == len(prompt) + len(answer) - 1
    assert report.prompt_tokens == len(follow_up)


def test_cancel_from_another_thread_then_the_same_answer_as_a_fresh_engine(
    engine: MlxEngine,
) -> None:
    prompt = engine.tokenize(SHORT_STORY)
    cancel = threading.Event()
    produced: list[int] = []

    def consume() -> None:  # the server runs generation in a worker thread
        for token in engine.generate(
            prompt, Sampling(max_tokens=100, temperature=0), cancel=cancel
        ):
            produced.append(token)
            if len(produced) == 2:
                cancel.set()

    worker = threading.Thread(target=consume)
    worker.start()
    worker.join()
    assert len(produced) == 2

    after, report = generate(engine, prompt, Sampling(max_tokens=5, temperature=0))
    assert report.cached_tokens == len(prompt) - 1
    fresh = load_mlx_engine("")
    try:
        expected, _ = generate(fresh, prompt, Sampling(max_tokens=5, temperature=0))
    finally:
        fresh.close()
    assert after == expected
    assert after[:2] == produced


def test_fixed_set_guide_is_obeyed(engine: MlxEngine) -> None:
    allowed = {*engine.tokenize(" yes"), *engine.tokenize(" no")}
    guide = FixedSetGuide(allowed, engine.vocab_size)
    tokens, _ = generate(
        engine, engine.tokenize(SHORT_STORY), Sampling(max_tokens=3, temperature=0), guide
    )
    assert len(tokens) == 3 and set(tokens) <= allowed


def test_json_schema_guide_with_the_hf_tokenizer(engine: MlxEngine) -> None:
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
        "additionalProperties": False,
    }
    guide = SchemaGuide(engine.guidance_tokenizer(), schema)
    prompt = engine.tokenize(render(engine, [SYSTEM, {"role": "user", "content": "JSON?"}]))
    tokens, _ = generate(engine, prompt, Sampling(max_tokens=12, temperature=0), guide)
    assert set(json.loads(text_of(engine, tokens))) == {"ok"}


def test_a_tree_of_values_is_evaluated_in_one_pass_as_each_alone(engine: MlxEngine) -> None:
    pairs, kept, afresh = tree_against_one_by_one(engine)
    for key, (in_tree, alone) in pairs.items():
        assert np.allclose(in_tree, alone, atol=1e-3), key
    # The kept path's keys and values are the ones a plain evaluation writes.
    assert np.allclose(kept, afresh, atol=1e-3)


def test_seeded_sampling_repeats(engine: MlxEngine) -> None:
    prompt = engine.tokenize(SHORT_STORY)
    sampling = Sampling(max_tokens=3, temperature=0.8, top_k=40, top_p=0.9, seed=11)
    assert generate(engine, prompt, sampling)[0] == generate(engine, prompt, sampling)[0]


def test_bad_model_references_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="no file or folder"):
        load_mlx_engine("/nonexistent/model.gguf")
    with pytest.raises(ModelNotFound, match="no model file or folder"):
        load_mlx_engine("no-such-model")
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("just some text")
    with pytest.raises(ModelNotFound, match="not a GGUF file"):
        load_mlx_engine(str(not_gguf))


def test_damaged_gguf_is_an_engine_error_not_a_crash(tmp_path: Path) -> None:
    data = embedded_model_path().read_bytes()
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(data[: len(data) - 100])
    with pytest.raises(EngineError, match="runs past the end of the file"):
        load_mlx_engine(str(truncated))
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"GGUF\x03\x00\x00\x00" + bytes(range(256)) * 2)
    with pytest.raises(EngineError, match="damaged GGUF header"):
        load_mlx_engine(str(garbage))


def test_module_imports_without_mlx_and_says_how_to_install_it() -> None:
    script = (
        "import sys\n"
        "sys.modules.update({'mlx': None, 'mlx.core': None, 'mlx_lm': None})\n"
        "from deskloop.engines.mlx import load_mlx_engine\n"
        "from deskloop.engines.base import EngineUnavailable\n"
        "try:\n"
        "    load_mlx_engine('')\n"
        "except EngineUnavailable as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert "pip install" in result.stdout and "mlx" in result.stdout


def test_mlx_model_folder_loads_through_mlx_lm(engine: MlxEngine, tmp_path: Path) -> None:
    folder = export_mlx_folder(engine, tmp_path / "smollm2-mlx")
    from_folder = load_mlx_engine(str(folder))
    try:
        assert from_folder.info.model_id == "smollm2-mlx"
        assert from_folder.info.chat_template == engine.info.chat_template
        assert from_folder.info.eos_token == "<|im_end|>"
        assert 2 in from_folder.stop_token_ids
        prompt = engine.tokenize(SHORT_CHAT)
        assert from_folder.tokenize(SHORT_CHAT) == prompt
        assert from_folder.token_bytes(9531) == engine.token_bytes(9531)
        sampling = Sampling(max_tokens=4, temperature=0)
        assert generate(from_folder, prompt, sampling)[0] == generate(engine, prompt, sampling)[0]
    finally:
        from_folder.close()


def test_gguf_quantization_is_kept_with_bits_read_from_the_shapes(engine: MlxEngine) -> None:
    # What the loader builds; on a CPU with OpenBLAS the engine then makes it float32
    # (tests/engines/test_mlx_cpu.py).
    from deskloop.engines.mlx_gguf import load_gguf_model

    llama = load_gguf_model(Path(engine.info.path)).model.model
    embedding, query = llama.embed_tokens, llama.layers[0].self_attn.q_proj
    assert (embedding.bits, embedding.group_size) == (8, 32)  # token_embd is Q8_0
    assert (query.bits, query.group_size) == (4, 32)  # the rest is Q4_1
