"""Write the embedded GGUF out as an mlx-community style folder, to test the folder path off macOS."""

from __future__ import annotations

import json
from pathlib import Path

from deskloop.engines.mlx import MlxEngine


def export_mlx_folder(engine: MlxEngine, folder: Path) -> Path:
    """config.json, model.safetensors and the tokenizer files, as mlx_lm.convert would lay them out."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    from deskloop.engines.mlx_gguf import load_gguf_model

    folder.mkdir(parents=True, exist_ok=True)
    # The GGUF as read, quantized: on a CPU with OpenBLAS the engine's own copy is float32.
    model = load_gguf_model(Path(engine.info.path)).model
    mx.save_safetensors(str(folder / "model.safetensors"), dict(tree_flatten(model.parameters())))
    args = model.args
    config = {
        "model_type": "llama",
        "hidden_size": args.hidden_size,
        "num_hidden_layers": args.num_hidden_layers,
        "intermediate_size": args.intermediate_size,
        "num_attention_heads": args.num_attention_heads,
        "num_key_value_heads": args.num_key_value_heads,
        "rms_norm_eps": args.rms_norm_eps,
        "vocab_size": args.vocab_size,
        "head_dim": args.head_dim,
        "max_position_embeddings": args.max_position_embeddings,
        "rope_theta": args.rope_theta,
        "rope_traditional": True,
        "tie_word_embeddings": True,
        # The GGUF's embedding is Q8_0, every other matrix Q4_1.
        "quantization": {
            "group_size": 32,
            "bits": 4,
            "model.embed_tokens": {"group_size": 32, "bits": 8},
        },
    }
    (folder / "config.json").write_text(json.dumps(config))
    engine._loaded.tokenizer.save(str(folder / "tokenizer.json"))
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": engine.info.bos_token,
        "eos_token": engine.info.eos_token,
        "chat_template": engine.info.chat_template,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return folder
