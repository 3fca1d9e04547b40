"""The GGUF vocabulary turned into a `tokenizers` tokenizer, on small hand-made vocabularies."""

from __future__ import annotations

from typing import Any

import pytest

from deskloop.engines.base import EngineError
from deskloop.engines.gguf_tokenizer import token_byte_table, tokenizer_from_gguf_metadata

pytestmark = pytest.mark.mlx  # `tokenizers` comes with the mlx extra


def tiny_metadata(**overrides: Any) -> dict[str, Any]:
    """A byte-level BPE vocabulary: two control tokens, the letters of "hi there", and merges."""
    tokens = [
        "<|im_start|>",
        "<|im_end|>",
        "h",
        "i",
        "Ġ",
        "t",
        "e",
        "r",
        "hi",
        "Ġt",
        "Ġth",
        "er",
        "Ġther",
        "Ġthere",
        "1",
        "2",
    ]
    metadata: dict[str, Any] = {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "smollm",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.merges": ["h i", "Ġ t", "Ġt h", "e r", "Ġth er", "Ġther e"],
        "tokenizer.ggml.token_type": [3, 3] + [1] * (len(tokens) - 2),
    }
    metadata.update(overrides)
    return metadata


def test_merges_apply_and_control_tokens_stay_whole() -> None:
    tokenizer = tokenizer_from_gguf_metadata(tiny_metadata())
    ids = tokenizer.encode("<|im_start|>hi there<|im_end|>", add_special_tokens=False).ids
    assert ids == [0, 8, 13, 1]


def test_smollm_pre_tokenizer_splits_digits_one_by_one() -> None:
    tokenizer = tokenizer_from_gguf_metadata(tiny_metadata())
    assert tokenizer.encode("12", add_special_tokens=False).ids == [14, 15]


def test_byte_table_maps_byte_level_symbols_back() -> None:
    metadata = tiny_metadata()
    table = token_byte_table(metadata["tokenizer.ggml.tokens"], {0, 1}, byte_level=True)
    assert table[0] == b"<|im_start|>"
    assert table[13] == b" there"


def test_sentencepiece_byte_table() -> None:
    table = token_byte_table(["<s>", "<0x0A>", "\u2581the"], {0}, byte_level=False)
    assert table == [b"<s>", b"\n", b" the"]


def test_other_tokenizer_kinds_point_to_the_llamacpp_engine() -> None:
    with pytest.raises(EngineError, match="--engine llamacpp"):
        tokenizer_from_gguf_metadata(tiny_metadata(**{"tokenizer.ggml.model": "llama"}))
    with pytest.raises(EngineError, match="unknown GGUF pre-tokenizer 'chatglm-bpe'"):
        tokenizer_from_gguf_metadata(tiny_metadata(**{"tokenizer.ggml.pre": "chatglm-bpe"}))
