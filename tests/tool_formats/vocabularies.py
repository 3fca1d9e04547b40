"""Real tokenizers of each model family, read from GGUF files already on the machine.

No weights are downloaded: the embedded SmolLM2 (the generic format), the Qwen2.5-Coder
GGUF that `shared/models/qwen2.5-coder-0.5b.sh` assembles (Hermes and Qwen3-Coder share
its vocabulary), and the vocabulary-only GGUFs llama.cpp keeps for its tokenizer tests,
found in the llama-cpp-python source distribution the install built from (Llama 3's BPE,
Gemma 4's, and the SentencePiece vocabulary of Llama 2 that Mistral's first tokenizers
follow: no Mistral GGUF is on the machine). A family whose file is missing is skipped.
"""

from __future__ import annotations

import os
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from deskloop.engines.models import embedded_model_path

QWEN_GGUF = Path(
    os.environ.get(
        "DESKLOOP_QWEN_GGUF",
        Path.home() / ".cache/deskloop/models/qwen2.5-coder-0.5b-q4_k_m.gguf",
    )
)
# llama.cpp's vocabulary test files, by family (vendor/llama.cpp/models/ggml-vocab-*.gguf).
LLAMA_CPP_VOCABULARIES = {
    "llama3": "ggml-vocab-llama-bpe.gguf",
    "gemma": "ggml-vocab-gemma-4.gguf",
    "mistral": "ggml-vocab-llama-spm.gguf",
    "qwen": "ggml-vocab-qwen2.gguf",
}
# Which vocabulary each tool format is checked on.
FAMILY_VOCABULARY = {
    "generic": "smollm2",
    "hermes": "qwen",
    "qwen3_coder": "qwen",
    "llama3": "llama3",
    "mistral": "mistral",
    "mistral_v11": "mistral",
    "gemma": "gemma",
}


def _source_trees() -> list[Path]:
    """Where llama-cpp-python's unpacked source distribution may be: uv's cache, or a path
    given in DESKLOOP_LLAMA_CPP_MODELS (a folder of ggml-vocab-*.gguf files)."""
    given = os.environ.get("DESKLOOP_LLAMA_CPP_MODELS")
    if given:
        return [Path(given)]
    caches = [Path(os.environ.get("UV_CACHE_DIR", Path.home() / ".cache/uv"))]
    found: list[Path] = []
    for root in caches:
        found.extend(
            sorted(root.glob("sdists-v*/pypi/llama-cpp-python/*/*/src/vendor/llama.cpp/models"))
        )
    return found


def vocabulary_path(name: str) -> Path | None:
    if name == "smollm2":
        return embedded_model_path()
    candidates: list[Path] = []
    if name == "qwen":
        candidates.append(QWEN_GGUF)
    if name in LLAMA_CPP_VOCABULARIES:
        candidates.extend(tree / LLAMA_CPP_VOCABULARIES[name] for tree in _source_trees())
    return next((path for path in candidates if path.is_file()), None)


@cache
def family_tokenizer(name: str) -> Any:
    """The llguidance tokenizer of vocabulary `name`, as the llamacpp engine builds it."""
    pytest.importorskip("llama_cpp")
    import llama_cpp
    from llguidance.llamacpp import lltokenizer_from_vocab

    path = vocabulary_path(name)
    if path is None:
        pytest.skip(f"no {name} vocabulary on this machine")
    llama = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    with warnings.catch_warnings():
        # llguidance 1.9 still calls llama_token_get_attr, deprecated in llama-cpp-python 0.3.
        warnings.filterwarnings("ignore", "llama_token_get_attr", DeprecationWarning)
        vocab = llama._model.vocab
        eos = llama_cpp.llama_vocab_eos(vocab)
        tokenizer = lltokenizer_from_vocab(vocab, eos_token=eos if eos >= 0 else 0)
    _KEEP_ALIVE.append(llama)  # the tokenizer calls into this vocabulary
    return tokenizer


_KEEP_ALIVE: list[Any] = []
