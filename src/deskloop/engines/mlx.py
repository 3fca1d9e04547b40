"""The MLX engine: GGUF files read straight into mlx-lm's llama model, or mlx-community folders.

On Apple Silicon MLX runs on the GPU; on Linux the `mlx-cpu` wheel runs it on the CPU.
This module imports without MLX installed; loading then says how to install it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np

from deskloop.engines.base import EngineError, EngineUnavailable, ModelInfo, ModelNotFound
from deskloop.engines.decoding import Logits, PrefixCachingEngine
from deskloop.engines.mlx_cpu import BlasThreads, dequantize_for_cpu, use_fast_blas
from deskloop.engines.models import ModelRef, resolve_model

# MLX binds its BLAS when it is first imported, and importing this module means MLX is wanted.
use_fast_blas()

INSTALL_HINT = "pip install 'deskloop[mlx]' (on Linux it brings the mlx-cpu wheel)"
# Tokens prefilled between two checks of `cancel`; mlx-lm prefills 2048 at a time on the GPU.
# On a 2-core CPU with OpenBLAS and float32 weights (mlx_cpu.py) 64 tokens take 0.26 s and a
# 361-token prefill ran 30% faster in 64s than in 16s; quantized weights through the
# reference BLAS prefill 4-10 tokens/s, where 16 and 64 measured the same.
CPU_PREFILL_CHUNK = 64
CPU_SLOW_PREFILL_CHUNK = 16
GPU_PREFILL_CHUNK = 512
# Tokens of a scored choice's tree evaluated in one pass (decoding.py). On the GPU a pass of
# a few hundred costs about one step; on this CPU each token costs a step either way (0.2 s),
# so only small trees (ids up to e99: `e` and its first digits) are worth it there.
CPU_TREE_LIMIT = 16
GPU_TREE_LIMIT = 512
DEFAULT_CONTEXT_CAP = 32768  # without --context-window, a model's trained window up to this size
# Control tokens that end a turn in the common chat formats, for GGUFs that name only one eos.
END_OF_TURN_TEXTS = frozenset(
    {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>"}
)


@dataclass(frozen=True)
class LoadedModel:
    """Everything the engine needs from either kind of model source."""

    model: Any  # an mlx-lm model (mlx.nn.Module)
    tokenizer: Any  # a `tokenizers.Tokenizer`
    token_table: list[bytes]
    stops: frozenset[int]
    vocab_size: int
    info: ModelInfo


class MlxEngine(PrefixCachingEngine):
    """An mlx-lm model with one KV cache, trimmed back to the shared prefix between requests."""

    name: ClassVar[str] = "mlx"

    def __init__(self, loaded: LoadedModel, *, dense_on_cpu: bool = False) -> None:
        super().__init__()
        import mlx.core as mx
        from mlx_lm.models.cache import make_prompt_cache

        self._mx = mx
        on_cpu = mx.default_device().type == mx.DeviceType.cpu
        self.prefill_chunk = GPU_PREFILL_CHUNK
        if on_cpu:
            self.prefill_chunk = CPU_PREFILL_CHUNK if dense_on_cpu else CPU_SLOW_PREFILL_CHUNK
        self.tree_limit = CPU_TREE_LIMIT if on_cpu else GPU_TREE_LIMIT
        # Since MLX 0.31.2 GPU streams belong to the thread that made them, and the server
        # generates in worker threads ("There is no Stream(gpu, N) in current thread",
        # ml-explore/mlx#3727); a thread-local stream gives every thread its own.
        new_stream = getattr(mx, "new_thread_local_stream", None)
        self._stream: Any = new_stream(mx.default_device()) if new_stream else None
        self._loaded = loaded
        self._model = loaded.model
        self._cache: list[Any] = make_prompt_cache(loaded.model)
        self._guidance_tokenizer: Any = None
        self._tree_keys: list[tuple[Any, Any]] = []  # each layer's keys and values of the last tree
        self._blas_threads = BlasThreads() if dense_on_cpu else None
        added = loaded.tokenizer.get_added_tokens_decoder()
        self.control_tokens = frozenset(index for index, token in added.items() if token.special)

    @property
    def info(self) -> ModelInfo:
        return self._loaded.info

    @property
    def vocab_size(self) -> int:
        return self._loaded.vocab_size

    @property
    def stop_token_ids(self) -> frozenset[int]:
        return self._loaded.stops

    def tokenize(self, text: str) -> list[int]:
        ids: list[int] = self._loaded.tokenizer.encode(text, add_special_tokens=False).ids
        return ids

    def tokenize_tail(self, text: str) -> list[int] | None:
        # `tokenizers` cuts the text at added special tokens first and normalizes and
        # pre-tokenizes each piece between them on its own, as llama.cpp does.
        return self.tokenize(text)

    def count_tokens(self, text: str) -> int:
        """How many tokens `tokenize(text)` gives."""
        return len(self.tokenize(text))

    def token_bytes(self, token: int) -> bytes:
        table = self._loaded.token_table
        return table[token] if 0 <= token < len(table) else b""

    def guidance_tokenizer(self) -> Any:
        if self._guidance_tokenizer is None:
            from llguidance import LLTokenizer

            self._guidance_tokenizer = LLTokenizer(
                self._loaded.tokenizer.to_str(),
                n_vocab=self.vocab_size,
                eos_token=sorted(self.stop_token_ids),
            )
        return self._guidance_tokenizer

    def _release(self) -> None:
        self._cache = []
        self._model = None
        self._loaded = replace(self._loaded, model=None)

    def _drop_cache_after(self, keep: int) -> int:
        from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache

        if keep == 0 or not can_trim_prompt_cache(self._cache):
            self._cache = make_prompt_cache(self._model)
            return 0
        trim_prompt_cache(self._cache, len(self._cached_tokens) - keep)
        return keep

    def _request_starts(self) -> None:
        if self._blas_threads is not None:
            self._blas_threads.request_starts()

    def _evaluate(self, tokens: Sequence[int]) -> Logits:
        if self._stream is None:
            return self._forward(tokens)
        with self._mx.stream(self._stream):
            return self._forward(tokens)

    def _forward(self, tokens: Sequence[int], first: int | None = None) -> Logits:
        """The logits of the last position, or of every position from `first` on (rows)."""
        mx = self._mx
        if self._blas_threads is not None:
            self._blas_threads.fit()
        inputs = mx.array([list(tokens)])
        inner = getattr(self._model, "model", None)
        start = len(tokens) - 1 if first is None else first
        if self._loaded.info.architecture == "llama" and inner is not None:
            # Only the positions asked for: skip the vocabulary projection of the rest.
            hidden = inner(inputs, cache=self._cache)[:, start:, :]
            head = getattr(self._model, "lm_head", None)
            logits = head(hidden) if head is not None else inner.embed_tokens.as_linear(hidden)
        else:
            logits = self._model(inputs, cache=self._cache)[:, start:, :]
        picked = (logits[0, -1] if first is None else logits[0]).astype(mx.float32)
        mx.eval(picked)
        result: Logits = np.asarray(picked)
        return result

    def _evaluate_rows(self, tokens: Sequence[int], first: int) -> Logits:
        if self._stream is None:
            return self._forward(tokens, first)
        with self._mx.stream(self._stream):
            return self._forward(tokens, first)

    def _can_cut_drafts(self) -> bool:
        from mlx_lm.models.cache import can_trim_prompt_cache

        return bool(can_trim_prompt_cache(self._cache))

    def _evaluate_tree(self, tokens: Sequence[int], parents: Sequence[int]) -> Logits | None:
        if len(tokens) > self.tree_limit or not self._can_evaluate_trees():
            return None
        if self._stream is None:
            return self._tree_forward(tokens, parents)
        with self._mx.stream(self._stream):
            return self._tree_forward(tokens, parents)

    def _can_evaluate_trees(self) -> bool:
        from mlx_lm.models.cache import KVCache

        inner = getattr(self._model, "model", None)
        return (
            self._loaded.info.architecture == "llama"
            and inner is not None
            and all(type(cache) is KVCache for cache in self._cache)
        )

    def _tree_forward(self, tokens: Sequence[int], parents: Sequence[int]) -> Logits:
        # mlx-lm's llama layers, run by hand: each token at the position of its depth, seeing
        # the cached prompt and its own ancestors (a tree mask); one pass for the whole tree.
        mx = self._mx
        if self._blas_threads is not None:
            self._blas_threads.fit()
        inner = self._model.model
        count = len(tokens)
        start = self._cache[0].offset
        depth: list[int] = []
        sees = np.zeros((count, start + count), dtype=np.bool_)
        sees[:, :start] = True
        for index, parent in enumerate(parents):
            depth.append(depth[parent] + 1 if parent >= 0 else 0)
            if parent >= 0:
                sees[index] = sees[parent]
            sees[index, start + index] = True
        mask = mx.array(sees)
        levels = sorted(set(depth))
        by_level = [[i for i in range(count) if depth[i] == level] for level in levels]
        order = [i for group in by_level for i in group]
        restore = mx.array(np.argsort(order))

        def rope(rotate: Any, x: Any) -> Any:
            # The tokens of one depth share a position: rotated as a batch of one-token rows.
            pieces = []
            for level, group in zip(levels, by_level, strict=True):
                rows = x[:, :, mx.array(group), :].transpose(2, 1, 0, 3)
                pieces.append(rotate(rows, offset=start + level).transpose(2, 1, 0, 3))
            return mx.take(mx.concatenate(pieces, axis=2), restore, axis=2)

        h = inner.embed_tokens(mx.array([list(tokens)]))
        self._tree_keys = []
        for layer, cache in zip(inner.layers, self._cache, strict=True):
            attention = layer.self_attn
            x = layer.input_layernorm(h)
            queries = attention.q_proj(x).reshape(1, count, attention.n_heads, -1)
            keys = attention.k_proj(x).reshape(1, count, attention.n_kv_heads, -1)
            values = attention.v_proj(x).reshape(1, count, attention.n_kv_heads, -1)
            queries = rope(attention.rope, queries.transpose(0, 2, 1, 3))
            keys = rope(attention.rope, keys.transpose(0, 2, 1, 3))
            values = values.transpose(0, 2, 1, 3)
            self._tree_keys.append((keys, values))
            if start:
                cached_keys, cached_values = (
                    cache.keys[..., :start, :],
                    cache.values[..., :start, :],
                )
                keys = mx.concatenate([cached_keys, keys], axis=2)
                values = mx.concatenate([cached_values, values], axis=2)
            out = mx.fast.scaled_dot_product_attention(
                queries, keys, values, scale=attention.scale, mask=mask
            )
            h = h + attention.o_proj(out.transpose(0, 2, 1, 3).reshape(1, count, -1))
            h = h + layer.mlp(layer.post_attention_layernorm(h))
        hidden = inner.norm(h)
        head = getattr(self._model, "lm_head", None)
        logits = head(hidden) if head is not None else inner.embed_tokens.as_linear(hidden)
        rows = logits[0].astype(mx.float32)
        mx.eval(rows)
        result: Logits = np.asarray(rows)
        return result

    def _keep_tree_path(self, path: Sequence[int]) -> None:
        trees, self._tree_keys = self._tree_keys, []
        if not path:
            return
        mx = self._mx
        with mx.stream(self._stream) if self._stream is not None else nullcontext():
            picked = mx.array(list(path))
            for cache, (keys, values) in zip(self._cache, trees, strict=True):
                cache.update_and_fetch(keys[:, :, picked, :], values[:, :, picked, :])
            mx.eval([part for cache in self._cache for part in (cache.keys, cache.values)])


def load_mlx_engine(model: str, **options: Any) -> MlxEngine:
    """Load a GGUF file (empty `model`: the embedded one) or, on macOS, an MLX model folder."""
    model_ref = resolve_model(model)
    if model_ref.kind == "name" or model_ref.path is None:
        raise ModelNotFound(
            f"no model file or folder at {model!r}: pass a GGUF file or an MLX model folder, "
            "or leave --model out for the embedded model"
        )
    try:
        import mlx.core  # noqa: F401
        import mlx_lm  # noqa: F401
    except ImportError as exc:
        raise EngineUnavailable(f"the mlx engine needs mlx and mlx-lm: {INSTALL_HINT}") from exc
    requested = int(options.get("context_window") or 0)
    if model_ref.kind == "gguf":
        loaded = _load_gguf(model_ref, model_ref.path, requested)
    else:
        loaded = _load_folder(model_ref, model_ref.path, requested)
    return MlxEngine(loaded, dense_on_cpu=dequantize_for_cpu(loaded.model))


def _load_gguf(model_ref: ModelRef, path: Path, requested_context: int) -> LoadedModel:
    from deskloop.engines.gguf_tokenizer import (
        gguf_special_token_ids,
        token_byte_table,
        tokenizer_from_gguf_metadata,
    )
    from deskloop.engines.mlx_gguf import load_gguf_model

    loaded = load_gguf_model(path)
    metadata = loaded.metadata
    tokens: list[str] = list(metadata["tokenizer.ggml.tokens"])
    special_ids = gguf_special_token_ids(metadata)
    stop_keys = (
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.eot_token_id",
        "tokenizer.ggml.eom_token_id",
    )
    stops = {int(metadata[key]) for key in stop_keys if key in metadata}
    stops |= {index for index in special_ids if tokens[index] in END_OF_TURN_TEXTS}
    architecture = str(metadata["general.architecture"])
    trained = int(metadata.get(f"{architecture}.context_length") or DEFAULT_CONTEXT_CAP)

    def token_text(key: str) -> str:
        index = metadata.get(key)
        return tokens[int(index)] if isinstance(index, int) and 0 <= index < len(tokens) else ""

    info = ModelInfo(
        model_id=model_ref.model_id,
        context_window=requested_context or min(trained, DEFAULT_CONTEXT_CAP),
        chat_template=metadata.get("tokenizer.chat_template"),
        bos_token=token_text("tokenizer.ggml.bos_token_id"),
        eos_token=token_text("tokenizer.ggml.eos_token_id"),
        architecture=architecture,
        path=str(path),
        parameters=loaded.parameters,
    )
    return LoadedModel(
        model=loaded.model,
        tokenizer=tokenizer_from_gguf_metadata(metadata),
        token_table=token_byte_table(tokens, special_ids, byte_level=True),
        stops=frozenset(stops),
        vocab_size=int(loaded.model.args.vocab_size),
        info=info,
    )


def _load_folder(model_ref: ModelRef, path: Path, requested_context: int) -> LoadedModel:
    """An mlx-community folder through `mlx_lm.load` (the macOS path)."""
    import mlx_lm

    from deskloop.engines.gguf_tokenizer import token_byte_table

    try:
        loaded: Any = mlx_lm.load(str(path), return_config=True)
        model, wrapper, config = loaded
    except (OSError, ValueError) as exc:
        raise EngineError(f"mlx-lm could not load the model folder {path}: {exc}") from exc
    backend = wrapper._tokenizer.backend_tokenizer
    vocab: dict[str, int] = backend.get_vocab(with_added_tokens=True)
    tokens = [""] * (max(vocab.values()) + 1)
    for text, index in vocab.items():
        tokens[index] = text
    special_ids = {
        index for index, added in backend.get_added_tokens_decoder().items() if added.special
    }
    decoder = json.loads(backend.to_str()).get("decoder") or {}
    trained = int(config.get("max_position_embeddings") or DEFAULT_CONTEXT_CAP)
    info = ModelInfo(
        model_id=model_ref.model_id,
        context_window=requested_context or min(trained, DEFAULT_CONTEXT_CAP),
        chat_template=getattr(wrapper, "chat_template", None),
        bos_token=wrapper.bos_token or "",
        eos_token=wrapper.eos_token or "",
        architecture=str(config.get("model_type", "")),
        path=str(path),
        parameters=_parameter_count(model, config),
    )
    return LoadedModel(
        model=model,
        tokenizer=backend,
        token_table=token_byte_table(
            tokens, special_ids, byte_level=decoder.get("type") == "ByteLevel"
        ),
        stops=frozenset(int(token) for token in wrapper.eos_token_ids),
        vocab_size=int(config.get("vocab_size") or len(tokens)),
        info=info,
    )


def _parameter_count(model: Any, config: dict[str, Any]) -> int:
    """Weights in an mlx-lm model; quantized matrices pack 32/bits weights in each uint32."""
    from mlx.utils import tree_flatten

    bits = int((config.get("quantization") or {}).get("bits") or 0)
    total = 0
    flat = cast(list[tuple[str, Any]], tree_flatten(model.parameters()))
    for name, array in flat:
        if name.endswith((".scales", ".biases")) and bits:
            continue  # quantization's own numbers, not weights
        packed = bits and str(array.dtype) == "mlx.core.uint32"
        total += int(array.size) * (32 // bits if packed else 1)
    return total
