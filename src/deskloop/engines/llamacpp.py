"""The llama.cpp engine: GGUF models through llama-cpp-python, loaded once and kept resident."""

from __future__ import annotations

import ctypes
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from deskloop.engines.base import EngineError, EngineUnavailable, ModelInfo, ModelNotFound
from deskloop.engines.decoding import Logits, PrefixCachingEngine
from deskloop.engines.gguf_header import read_gguf_scalars
from deskloop.engines.models import ModelRef, resolve_model

INSTALL_HINT = "pip install 'deskloop[llamacpp]' (it builds llama-cpp-python, about 5 minutes)"
DEFAULT_CONTEXT_CAP = 32768  # without --context-window, a model's trained window up to this size
BATCH_SIZE = 512


class LlamaCppEngine(PrefixCachingEngine):
    """One llama.cpp context over one GGUF model; its KV cache is reused across requests."""

    name: ClassVar[str] = "llamacpp"
    prefill_chunk = BATCH_SIZE

    def __init__(self, llama: Any, model_ref: ModelRef, context_window: int) -> None:
        super().__init__()
        import llama_cpp

        self._bindings = llama_cpp
        self._llama = llama
        self._vocab = llama._model.vocab
        self._vocab_size = int(llama.n_vocab())
        self._add_bos = bool(llama._model.add_bos_token())
        self._guidance_tokenizer: Any = None
        metadata: dict[str, str] = dict(llama.metadata)
        # Built once here (~0.1 s for 49k tokens) rather than on the first streamed token.
        self._token_bytes = [self._piece(index) for index in range(self._vocab_size)]
        bos_id, eos_id = int(llama.token_bos()), int(llama.token_eos())
        self._bos_text = self._token_bytes[bos_id].decode("utf-8", "replace") if bos_id >= 0 else ""
        self._stops = frozenset(
            token
            for token in range(self._vocab_size)
            if llama_cpp.llama_vocab_is_eog(self._vocab, token)
        ) | ({eos_id} if eos_id >= 0 else set())
        self._info = ModelInfo(
            model_id=model_ref.model_id,
            context_window=context_window,
            chat_template=metadata.get("tokenizer.chat_template"),
            bos_token=self._bos_text,
            eos_token=self._token_bytes[eos_id].decode("utf-8", "replace") if eos_id >= 0 else "",
            architecture=metadata.get("general.architecture", ""),
            path=str(model_ref.path or ""),
            extra={"metadata": metadata},
        )

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @property
    def stop_token_ids(self) -> frozenset[int]:
        return self._stops

    def tokenize(self, text: str) -> list[int]:
        self._require_open()
        # BOS only when the GGUF asks for one and the rendered text does not start with it.
        add_bos = self._add_bos and not (self._bos_text and text.startswith(self._bos_text))
        tokens: list[int] = self._llama.tokenize(
            text.encode("utf-8"), add_bos=add_bos, special=True
        )
        return tokens

    def count_tokens(self, text: str) -> int:
        """How many tokens `tokenize(text)` gives."""
        return len(self.tokenize(text))

    def token_bytes(self, token: int) -> bytes:
        return self._token_bytes[token] if 0 <= token < self._vocab_size else b""

    def guidance_tokenizer(self) -> Any:
        if self._guidance_tokenizer is None:
            self._require_open()
            from llguidance.llamacpp import lltokenizer_from_vocab

            with warnings.catch_warnings():
                # llguidance 1.9 still calls llama_token_get_attr, deprecated in llama-cpp-python 0.3.
                warnings.filterwarnings("ignore", "llama_token_get_attr", DeprecationWarning)
                self._guidance_tokenizer = lltokenizer_from_vocab(
                    self._vocab, eos_token=sorted(self._stops)
                )
        return self._guidance_tokenizer

    def _release(self) -> None:
        self._llama.close()

    def _piece(self, token: int) -> bytes:
        size = 64
        while True:
            buffer = ctypes.create_string_buffer(size)
            written = self._bindings.llama_token_to_piece(self._vocab, token, buffer, size, 0, True)
            if written >= 0:
                return bytes(buffer.raw[:written])
            size = -written  # llama.cpp returns the negated size it needs

    def _drop_cache_after(self, keep: int) -> int:
        # llama.cpp refuses a partial removal where it cannot do one (recurrent models).
        if not self._llama._ctx.kv_cache_seq_rm(-1, keep, -1):
            self._llama._ctx.kv_cache_seq_rm(-1, 0, -1)
            keep = 0
        self._llama.n_tokens = keep
        return keep

    def _evaluate(self, tokens: Sequence[int]) -> Logits:
        self._llama.n_tokens = len(self._cached_tokens)
        self._llama.eval(tokens)
        pointer = self._llama._ctx.get_logits_ith(-1)
        # A view of llama.cpp's own buffer: valid until the next eval, which is after sampling.
        logits: Logits = np.ctypeslib.as_array(pointer, shape=(self._vocab_size,))
        return logits


def load_llamacpp_engine(model: str, **options: Any) -> LlamaCppEngine:
    """Load a GGUF file (empty `model`: the embedded one) with llama-cpp-python."""
    model_ref = resolve_model(model)
    if model_ref.kind != "gguf" or model_ref.path is None:
        raise ModelNotFound(_not_gguf_message(model, model_ref))
    try:
        import llama_cpp
    except ImportError as exc:
        raise EngineUnavailable(
            f"the llamacpp engine needs llama-cpp-python: {INSTALL_HINT}"
        ) from exc
    decode_threads, prefill_threads = default_thread_counts()
    if options.get("threads"):
        decode_threads = prefill_threads = int(options["threads"])
    try:
        context_window = int(options.get("context_window") or 0) or min(
            _trained_context(model_ref.path), DEFAULT_CONTEXT_CAP
        )
        llama = llama_cpp.Llama(
            model_path=str(model_ref.path),
            n_ctx=context_window,
            n_batch=BATCH_SIZE,
            n_threads=decode_threads,
            n_threads_batch=prefill_threads,
            logits_all=False,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise EngineError(f"llama.cpp could not load {model_ref.path}: {exc}") from exc
    return LlamaCppEngine(llama, model_ref, context_window)


def default_thread_counts() -> tuple[int, int]:
    """Threads for decoding and for prefill: half the logical cores, and all but one.

    llama.cpp's threads wait for each other at every layer, so one busy core stalls them
    all. Measured here (2 cores, load ~4, bench_engines.py): 2 threads decoded 7-8 tok/s
    and prefilled 27-36 tok/s, 1 thread 40-88 and 94-136. Half the logical cores is also
    llama-cpp-python's own default for decoding (the physical cores on SMT machines).
    """
    cores = os.cpu_count() or 1
    return max(1, cores // 2), max(1, cores - 1)


def _not_gguf_message(model: str, model_ref: ModelRef) -> str:
    if model_ref.kind == "mlx-folder":
        return f"{model} is an MLX model folder; the llamacpp engine needs a GGUF file (or use --engine mlx)"
    return f"no GGUF file at {model!r}: pass the path of a .gguf file, or leave --model out for the embedded model"


def _trained_context(path: Path) -> int:
    """The context length the GGUF was trained with, from its header."""
    header = read_gguf_scalars(path, {"general.architecture"})
    key = f"{header.get('general.architecture', 'llama')}.context_length"
    trained = read_gguf_scalars(path, {key}).get(key)
    return int(trained) if isinstance(trained, int) and trained > 0 else DEFAULT_CONTEXT_CAP
