"""Load a llama-architecture GGUF into mlx-lm's llama model, keeping quantized tensors quantized.

`mx.load` turns Q4_0/Q4_1/Q8_0 tensors into MLX affine quantization (`weight`, `scales`,
`biases`, group size 32); the bit width follows from the packed weight and scale shapes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import mlx.core as mx
from mlx.nn.layers.quantized import quantize
from mlx_lm.models import llama

from deskloop.engines.base import EngineError
from deskloop.engines.gguf_header import GGML_TYPE_NAMES, check_gguf_layout, parameter_count

GGUF_GROUP_SIZE = 32  # every GGUF block format mx.load keeps quantized uses 32-weight blocks
SUPPORTED_ARCHITECTURES = ("llama",)

_LAYER_TENSORS = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_GLOBAL_TENSORS = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}
_LAYER_NAME = re.compile(r"blk\.(\d+)\.(\w+)$")


@dataclass
class GgufModel:
    """An mlx-lm model built from a GGUF file, with the file's metadata."""

    model: llama.Model
    metadata: dict[str, Any]
    parameters: int = 0


def load_gguf_model(path: Path) -> GgufModel:
    """Read `path` with `mx.load` and build the mlx-lm llama model it describes."""
    records = check_gguf_layout(path)
    unsupported = {
        record.name: record.ggml_type
        for record in records
        if record.ggml_type not in GGML_TYPE_NAMES
    }
    if unsupported:
        name, ggml_type = next(iter(unsupported.items()))
        kept = ", ".join(GGML_TYPE_NAMES.values())
        raise EngineError(
            f"{path.name} stores {name} as ggml type {ggml_type}; MLX reads only {kept} "
            "from GGUF files: use --engine llamacpp, or a Q4_0/Q4_1/Q8_0 file"
        )
    try:
        loaded = mx.load(str(path), return_metadata=True)
    except (RuntimeError, ValueError) as exc:
        raise EngineError(f"MLX could not read {path} as a GGUF file: {exc}") from exc
    tensors, raw_metadata = cast(tuple[dict[str, mx.array], dict[str, Any]], loaded)
    metadata = {key: _plain(value) for key, value in raw_metadata.items()}
    architecture = str(metadata.get("general.architecture", ""))
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise EngineError(
            f"the mlx engine loads only llama-architecture GGUF files; {path.name} is "
            f"{architecture or 'unlabelled'!r}: use --engine llamacpp for it"
        )
    weights = {_mlx_name(name): tensor for name, tensor in tensors.items()}
    model = llama.Model(_model_args(metadata, tied="lm_head.weight" not in weights))
    quantize(model, class_predicate=lambda module_path, _: _quantization(module_path, weights))
    try:
        model.load_weights(list(weights.items()), strict=True)
    except ValueError as exc:
        raise EngineError(
            f"{path.name} does not match the llama layout MLX expects: {exc}"
        ) from exc
    mx.eval(model.parameters())
    return GgufModel(model=model, metadata=metadata, parameters=parameter_count(records))


def _model_args(metadata: Mapping[str, Any], *, tied: bool) -> llama.ModelArgs:
    prefix = str(metadata["general.architecture"])

    def number(key: str, default: Any = None) -> Any:
        value = metadata.get(f"{prefix}.{key}", default)
        if value is None:
            raise EngineError(f"the GGUF metadata lacks {prefix}.{key}")
        return value

    heads = int(number("attention.head_count"))
    hidden = int(number("embedding_length"))
    vocab_size = metadata.get(f"{prefix}.vocab_size") or len(metadata["tokenizer.ggml.tokens"])
    return llama.ModelArgs(
        model_type="llama",
        hidden_size=hidden,
        num_hidden_layers=int(number("block_count")),
        intermediate_size=int(number("feed_forward_length")),
        num_attention_heads=heads,
        num_key_value_heads=int(number("attention.head_count_kv", heads)),
        rms_norm_eps=float(number("attention.layer_norm_rms_epsilon")),
        vocab_size=int(vocab_size),
        head_dim=int(number("attention.key_length", hidden // heads)),
        max_position_embeddings=int(number("context_length")),
        rope_theta=float(number("rope.freq_base", 10000.0)),
        # convert_hf_to_gguf.py permutes Q/K rows so that RoPE rotates adjacent pairs,
        # which is MLX's "traditional" layout.
        rope_traditional=True,
        tie_word_embeddings=tied,
    )


def _quantization(module_path: str, weights: Mapping[str, mx.array]) -> dict[str, int] | bool:
    scales = weights.get(f"{module_path}.scales")
    if scales is None:
        return False
    packed = weights[f"{module_path}.weight"]
    columns = scales.shape[-1] * GGUF_GROUP_SIZE
    return {"group_size": GGUF_GROUP_SIZE, "bits": packed.shape[-1] * 32 // columns}


def _mlx_name(gguf_name: str) -> str:
    stem, _, kind = gguf_name.rpartition(".")
    match = _LAYER_NAME.match(stem)
    if match and match.group(2) in _LAYER_TENSORS:
        return f"model.layers.{match.group(1)}.{_LAYER_TENSORS[match.group(2)]}.{kind}"
    if stem in _GLOBAL_TENSORS:
        return f"{_GLOBAL_TENSORS[stem]}.{kind}"
    return gguf_name  # unknown tensors make load_weights fail with their GGUF name


def _plain(value: Any) -> Any:
    """Metadata scalars arrive as 0-d mx arrays; turn them into Python values."""
    if isinstance(value, mx.array):
        return value.item() if value.ndim == 0 else value.tolist()
    return value
