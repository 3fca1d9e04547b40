"""The llama.cpp engine: GGUF models through llama-cpp-python, loaded once and kept resident."""

from __future__ import annotations

import ctypes
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from deskloop.engines.base import (
    EngineError,
    EngineUnavailable,
    ModelInfo,
    ModelNotFound,
    Sampling,
)
from deskloop.engines.cores import CoreBudget, pinned_threads
from deskloop.engines.decoding import Logits, NativeSampler, PrefixCachingEngine
from deskloop.engines.gguf_header import read_gguf_scalars
from deskloop.engines.memory import trim_heap, zero_pages_handed_back
from deskloop.engines.models import ModelRef, resolve_model

log = logging.getLogger("deskloop.engines")

INSTALL_HINT = "pip install 'deskloop[llamacpp]' (it builds llama-cpp-python, about 5 minutes)"
DEFAULT_CONTEXT_CAP = 32768  # without --context-window, a model's trained window up to this size
# llama-server's physical batch (n_ubatch); prefill is handed over in pieces of this size,
# so a cancel waits for at most one of them.
BATCH_SIZE = 512
# Sequences besides the answer's own, for scoring a choice among up to this many values in
# one batch (decoding.py); they share the answer's cache cells, so they cost no memory.
TREE_SEQUENCES = 64


class LlamaCppEngine(PrefixCachingEngine):
    """One llama.cpp context over one GGUF model; its KV cache is reused across requests."""

    name: ClassVar[str] = "llamacpp"
    prefill_chunk = BATCH_SIZE
    # From 64 query rows (GGML_FA_TILE_Q) ggml's CPU flash attention takes a tiled kernel
    # that rounds differently: a row's logits then differ by up to ~1 from the same token
    # evaluated in a smaller batch, enough to flip a near-tie at temperature 0.
    exact_batch = 63

    def __init__(
        self,
        llama: Any,
        model_ref: ModelRef,
        context_window: int,
        *,
        threads: int | None = None,
    ) -> None:
        super().__init__()
        import llama_cpp

        self._bindings = llama_cpp
        self._llama = llama
        self._context = llama._ctx.ctx
        self._memory = llama_cpp.llama_get_memory(self._context)
        self._tree_start = 0  # the position of the first token of the last evaluated tree
        self._tree_sequences: list[list[int]] = []  # the sequences through each tree token
        # A fixed --threads wins; otherwise the count follows the cores left free.
        self._budget = None if threads else CoreBudget()
        self._threads = threads or int(llama.n_threads)
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
        self.control_tokens = frozenset(
            token
            for token in range(self._vocab_size)
            if llama_cpp.llama_vocab_is_control(self._vocab, token)
        )
        self._info = ModelInfo(
            model_id=model_ref.model_id,
            context_window=context_window,
            chat_template=metadata.get("tokenizer.chat_template"),
            bos_token=self._bos_text,
            eos_token=self._token_bytes[eos_id].decode("utf-8", "replace") if eos_id >= 0 else "",
            architecture=metadata.get("general.architecture", ""),
            path=str(model_ref.path or ""),
            extra={"metadata": metadata},
            parameters=int(llama._model.n_params()),
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

    def tokenize_tail(self, text: str) -> list[int] | None:
        # llama.cpp cuts the text at special tokens first and tokenizes each piece between
        # them on its own (llama-vocab.cpp, tokenizer_st_partition): a tail that starts
        # with one comes out as it does inside the whole.
        self._require_open()
        tokens: list[int] = self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)
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
        bindings = self._bindings
        # Every sequence (-1): a tree's sequences are gone already, unless it failed midway.
        # llama.cpp refuses a partial removal where it cannot do one (recurrent models).
        if not bindings.llama_memory_seq_rm(self._memory, -1, keep, -1):
            bindings.llama_memory_seq_rm(self._memory, -1, 0, -1)
            keep = 0
        return keep

    def _evaluate(self, tokens: Sequence[int]) -> Logits:
        bindings = self._bindings
        self._fit_threads()
        count = len(tokens)
        array = (bindings.llama_token * count)(*tokens)
        # Positions follow the cache (cut back to `_cached_tokens`); logits only for the last.
        status = bindings.llama_decode(self._context, bindings.llama_batch_get_one(array, count))
        if status != 0:
            raise EngineError(
                f"llama.cpp could not evaluate {count} tokens (llama_decode: {status})"
            )
        pointer = bindings.llama_get_logits_ith(self._context, -1)
        # A view of llama.cpp's own buffer: valid until the next eval, which is after sampling.
        logits: Logits = np.ctypeslib.as_array(pointer, shape=(self._vocab_size,))
        return logits

    def _evaluate_rows(self, tokens: Sequence[int], first: int) -> Logits:
        bindings = self._bindings
        self._fit_threads()
        count = len(tokens)
        start = len(self._cached_tokens)
        batch = bindings.llama_batch_init(count, 0, 1)
        try:
            for index, token in enumerate(tokens):
                batch.token[index] = token
                batch.pos[index] = start + index
                batch.n_seq_id[index] = 1
                batch.seq_id[index][0] = 0
                batch.logits[index] = index >= first
            batch.n_tokens = count
            status = bindings.llama_decode(self._context, batch)
        finally:
            bindings.llama_batch_free(batch)
        if status != 0:
            raise EngineError(
                f"llama.cpp could not evaluate {count} tokens (llama_decode: {status})"
            )
        # The requested rows lie one after another in the batch's order; a view of
        # llama.cpp's buffer, read before the next evaluation.
        pointer = bindings.llama_get_logits(self._context)
        rows: Logits = np.ctypeslib.as_array(pointer, shape=(count - first, self._vocab_size))
        return rows

    def _can_cut_drafts(self) -> bool:
        model = self._llama._model.model
        return not (
            self._bindings.llama_model_is_recurrent(model)
            or self._bindings.llama_model_is_hybrid(model)
        )

    def _evaluate_tree(self, tokens: Sequence[int], parents: Sequence[int]) -> Logits | None:
        # One sequence per leaf, sharing the answer's cells (a copy of sequence 0): a token
        # belongs to the sequences of the leaves below it, so it sees the prompt and its
        # ancestors only. One llama_decode for the whole tree, logits for every token.
        bindings = self._bindings
        count = len(tokens)
        has_child = {parent for parent in parents if parent >= 0}
        leaves = [node for node in range(count) if node not in has_child]
        if count > BATCH_SIZE or len(leaves) > TREE_SEQUENCES:
            return None
        depth: list[int] = []
        for parent in parents:
            depth.append(depth[parent] + 1 if parent >= 0 else 0)
        sequences: list[list[int]] = [[] for _ in range(count)]
        for sequence, leaf in enumerate(leaves, start=1):
            node = leaf
            while node >= 0:
                sequences[node].append(sequence)
                node = parents[node]
        self._fit_threads()
        self._tree_start = start = len(self._cached_tokens)
        self._tree_sequences = sequences
        for sequence in range(1, len(leaves) + 1):
            bindings.llama_memory_seq_cp(self._memory, 0, sequence, -1, -1)
        batch = bindings.llama_batch_init(count, 0, len(leaves))
        try:
            for index, token in enumerate(tokens):
                batch.token[index] = token
                batch.pos[index] = start + depth[index]
                batch.n_seq_id[index] = len(sequences[index])
                for slot, sequence in enumerate(sequences[index]):
                    batch.seq_id[index][slot] = sequence
                batch.logits[index] = True
            batch.n_tokens = count
            status = bindings.llama_decode(self._context, batch)
            if status != 0:
                raise EngineError(
                    f"llama.cpp could not evaluate a tree of {count} tokens (llama_decode: {status})"
                )
            rows: Logits = np.empty((count, self._vocab_size), dtype=np.float32)
            for index in range(count):
                pointer = bindings.llama_get_logits_ith(self._context, index)
                rows[index] = np.ctypeslib.as_array(pointer, shape=(self._vocab_size,))
        finally:
            bindings.llama_batch_free(batch)
        return rows

    def _keep_tree_path(self, path: Sequence[int]) -> None:
        bindings = self._bindings
        sequences, self._tree_sequences = self._tree_sequences, []
        if path:
            # Any sequence through the path's last token holds the whole path.
            through = sequences[path[-1]][0]
            start = self._tree_start
            bindings.llama_memory_seq_cp(self._memory, through, 0, start, start + len(path))
        leaves = max((max(through) for through in sequences if through), default=0)
        for sequence in range(1, leaves + 1):
            bindings.llama_memory_seq_rm(self._memory, sequence, -1, -1)

    def _request_starts(self) -> None:
        if self._budget is not None:
            self._budget.request_starts()

    def _fit_threads(self) -> None:
        if self._budget is None:
            return
        free = self._budget.free()
        if free != self._threads:
            self._bindings.llama_set_n_threads(self._context, free, free)
            self._threads = free

    def _native_sampler(self, sampling: Sampling) -> NativeSampler | None:
        return LlamaSamplerChain(self._bindings, self._context, sampling)


class LlamaSamplerChain:
    """llama.cpp's own sampler chain, in the order TokenSampler documents.

    Temperature first, then top-k, then top-p over what is left, then the draw (greedy at
    temperature 0): the same choice as `TokenSampler`, without the logits crossing into
    Python for every token.
    """

    def __init__(self, bindings: Any, context: Any, sampling: Sampling) -> None:
        self._bindings = bindings
        self._context = context
        chain = bindings.llama_sampler_chain_init(bindings.llama_sampler_chain_default_params())
        self._chain = chain
        if sampling.temperature <= 0:
            bindings.llama_sampler_chain_add(chain, bindings.llama_sampler_init_greedy())
            return
        bindings.llama_sampler_chain_add(
            chain, bindings.llama_sampler_init_temp(sampling.temperature)
        )
        if sampling.top_k and sampling.top_k > 0:
            bindings.llama_sampler_chain_add(
                chain, bindings.llama_sampler_init_top_k(sampling.top_k)
            )
        if sampling.top_p is not None and sampling.top_p < 1:
            bindings.llama_sampler_chain_add(
                chain, bindings.llama_sampler_init_top_p(sampling.top_p, 1)
            )
        seed = bindings.LLAMA_DEFAULT_SEED if sampling.seed is None else sampling.seed & 0xFFFFFFFF
        bindings.llama_sampler_chain_add(chain, bindings.llama_sampler_init_dist(seed))

    def sample(self) -> int:
        return int(self._bindings.llama_sampler_sample(self._chain, self._context, -1))

    def close(self) -> None:
        self._bindings.llama_sampler_free(self._chain)


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
    fixed_threads = pinned_threads(int(options.get("threads") or 0))
    threads = fixed_threads or CoreBudget().free()
    trained = _trained_context(model_ref.path)
    context_window = int(options.get("context_window") or 0) or min(trained, DEFAULT_CONTEXT_CAP)
    stretch: dict[str, Any] = {}
    if context_window > trained:
        # llama.cpp's context extension (YaRN): positions are compressed into the trained range.
        stretch = {
            "rope_scaling_type": llama_cpp.LLAMA_ROPE_SCALING_TYPE_YARN,
            "rope_freq_scale": trained / context_window,
            "yarn_orig_ctx": trained,
        }
        log.warning(
            "context window %d is above the %d tokens %s was trained on: stretched with "
            "YaRN rope scaling; answers may get worse deep into long prompts",
            context_window,
            trained,
            model_ref.model_id,
        )
    try:
        llama = llama_cpp.Llama(
            model_path=str(model_ref.path),
            n_ctx=BATCH_SIZE,  # a stand-in: the context deskloop uses is made next
            n_batch=BATCH_SIZE,
            n_ubatch=BATCH_SIZE,
            n_threads=threads,
            n_threads_batch=threads,
            flash_attn=True,
            logits_all=False,
            verbose=False,
            **stretch,
        )
        _use_tree_context(llama, context_window)
    except (ValueError, RuntimeError, OSError) as exc:
        raise EngineError(f"llama.cpp could not load {model_ref.path}: {exc}") from exc
    return LlamaCppEngine(llama, model_ref, context_window, threads=fixed_threads)


def _use_tree_context(llama: Any, context_window: int) -> None:
    """Give `llama` a context of `context_window` tokens that also holds TREE_SEQUENCES
    sequences in the same cells (a unified KV cache), for scoring choices in one batch.

    llama-cpp-python's Llama makes a one-sequence context and has no setting for more.
    """
    import llama_cpp
    from llama_cpp._internals import LlamaContext

    params = llama_cpp.llama_context_params.from_buffer_copy(llama.context_params)
    params.n_ctx = context_window
    params.n_batch = params.n_ubatch = BATCH_SIZE
    params.n_seq_max = 1 + TREE_SEQUENCES
    params.kv_unified = True
    # llama.cpp clears the KV cache (189 MB for SmolLM2 at 8192 tokens) and the logits of
    # every sequence (65 rows of the vocabulary) as it makes the context; until a
    # conversation writes them they need not be resident.
    with zero_pages_handed_back():
        context = LlamaContext(model=llama._model, params=params, verbose=False)
    llama._ctx.close()
    llama._ctx = context
    llama.context_params = params
    trim_heap()  # what the stand-in context left on the heap


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
