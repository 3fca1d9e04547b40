"""A Hugging Face `tokenizers` tokenizer rebuilt from the vocabulary stored in a GGUF file.

The GGUF keeps the BPE vocabulary, merges and token types; the pre-tokenizer regex is
only named (`tokenizer.ggml.pre`), so the known names are mapped to the patterns
llama.cpp uses for them (llama-vocab.cpp, `llm_tokenizer_bpe`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

from deskloop.engines.base import EngineError

# GGUF token types (gguf-py `TokenType`): 3 is CONTROL, 4 USER_DEFINED.
CONTROL_TOKEN_TYPE = 3
USER_DEFINED_TOKEN_TYPE = 4

_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")
_GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
_LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# tokenizer.ggml.pre -> (split digits one by one first, the word-splitting regex)
_PRE_TOKENIZERS: dict[str, tuple[bool, str]] = {
    "default": (False, _GPT2_PATTERN),
    "gpt-2": (False, _GPT2_PATTERN),
    "smollm": (True, _GPT2_PATTERN),
    "starcoder": (True, _GPT2_PATTERN),
    "refact": (True, _GPT2_PATTERN),
    "codeshell": (True, _GPT2_PATTERN),
    "llama3": (False, _LLAMA3_PATTERN),
    "llama-bpe": (False, _LLAMA3_PATTERN),
    "smaug-bpe": (False, _LLAMA3_PATTERN),
    "qwen2": (False, _QWEN2_PATTERN),
}


def tokenizer_from_gguf_metadata(metadata: Mapping[str, Any]) -> Tokenizer:
    """Build the byte-level BPE tokenizer a GGUF describes; control tokens stay single tokens."""
    kind = str(metadata.get("tokenizer.ggml.model", ""))
    if kind != "gpt2":
        raise EngineError(
            f"this GGUF uses a {kind or 'missing'!r} tokenizer; the mlx engine reads only "
            "byte-level BPE ('gpt2') vocabularies from GGUF files: use --engine llamacpp for it"
        )
    pre_name = str(metadata.get("tokenizer.ggml.pre", "default"))
    if pre_name not in _PRE_TOKENIZERS:
        known = ", ".join(sorted(_PRE_TOKENIZERS))
        raise EngineError(
            f"unknown GGUF pre-tokenizer {pre_name!r} (known: {known}); "
            "use --engine llamacpp for this model"
        )
    tokens: Sequence[str] = metadata["tokenizer.ggml.tokens"]
    merges: Sequence[str] = metadata["tokenizer.ggml.merges"]

    vocab = {token: index for index, token in enumerate(tokens)}
    merge_pairs = [(left, right) for left, _, right in (merge.partition(" ") for merge in merges)]
    tokenizer = Tokenizer(
        models.BPE(vocab=vocab, merges=merge_pairs, fuse_unk=False, ignore_merges=False)
    )
    split_digits, pattern = _PRE_TOKENIZERS[pre_name]
    steps: list[pre_tokenizers.PreTokenizer] = []
    if split_digits:
        steps.append(pre_tokenizers.Digits(individual_digits=True))
    steps.append(pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False))
    steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(steps)
    tokenizer.decoder = decoders.ByteLevel()

    specials = [
        AddedToken(tokens[index], special=True, normalized=False)
        for index in sorted(gguf_special_token_ids(metadata))
    ]
    tokenizer.add_special_tokens(specials)
    return tokenizer


def _as_int_list(value: Any, length: int) -> list[int]:
    if value is None:
        return [1] * length
    if hasattr(value, "tolist"):
        converted: list[int] = value.tolist()
        return converted
    return [int(item) for item in value]


def gguf_special_token_ids(metadata: Mapping[str, Any]) -> set[int]:
    """Ids of the control and user-defined tokens, which stand for their own text."""
    tokens: Sequence[str] = metadata["tokenizer.ggml.tokens"]
    token_types = _as_int_list(metadata.get("tokenizer.ggml.token_type"), len(tokens))
    return {
        index
        for index, kind_of_token in enumerate(token_types)
        if kind_of_token in (CONTROL_TOKEN_TYPE, USER_DEFINED_TOKEN_TYPE)
    }


def token_byte_table(
    tokens: Sequence[str], special_ids: set[int], *, byte_level: bool
) -> list[bytes]:
    """The raw bytes of every token.

    Special tokens are their text; byte-level BPE symbols map back to bytes; otherwise
    SentencePiece conventions apply (`<0x0A>` is one byte, `▁` is a space).
    """
    symbol_to_byte = {symbol: byte for byte, symbol in _byte_level_symbols().items()}
    table: list[bytes] = []
    for index, token in enumerate(tokens):
        if index in special_ids:
            table.append(token.encode("utf-8"))
        elif byte_level and all(symbol in symbol_to_byte for symbol in token):
            table.append(bytes(symbol_to_byte[symbol] for symbol in token))
        elif not byte_level and _BYTE_TOKEN.fullmatch(token):
            table.append(bytes([int(token[3:5], 16)]))
        elif not byte_level:
            table.append(token.replace("\u2581", " ").encode("utf-8"))
        else:
            table.append(token.encode("utf-8"))
    return table


def _byte_level_symbols() -> dict[int, str]:
    """GPT-2's byte-to-printable-character map: printable bytes stay, the rest move to 256+."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    mapping = {byte: chr(byte) for byte in printable}
    shifted = 0
    for byte in range(256):
        if byte not in mapping:
            mapping[byte] = chr(256 + shifted)
            shifted += 1
    return mapping
