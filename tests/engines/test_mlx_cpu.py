"""MLX on the CPU with OpenBLAS and float32 weights (engines/mlx_cpu.py), on the embedded model."""

from __future__ import annotations

import ctypes.util
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from deskloop.engines.models import embedded_model_path

pytestmark = [pytest.mark.slow, pytest.mark.mlx]

PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"


def run_python(code: str) -> dict[str, object]:
    """`code` in a fresh interpreter (MLX binds its BLAS once per process); its last line is JSON."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


ENGINE_FACTS = """
    import json, os
    from deskloop.engines.mlx import load_mlx_engine

    engine = load_mlx_engine("")
    import mlx.nn as nn
    quantized = sum(
        isinstance(module, (nn.QuantizedLinear, nn.QuantizedEmbedding))
        for _, module in engine._model.named_modules()
    )
    with open("/proc/self/maps") as maps:
        openblas = "libopenblas" in maps.read()
    prompt = engine.tokenize({prompt!r})
    from deskloop.engines.base import Sampling
    import threading
    tokens = list(engine.generate(prompt, Sampling(max_tokens=8, temperature=0.0), cancel=threading.Event()))
    print(json.dumps({{"quantized": quantized, "openblas": openblas, "chunk": engine.prefill_chunk, "tokens": tokens}}))
"""


@pytest.mark.skipif(
    sys.platform != "linux" or ctypes.util.find_library("openblas") is None,
    reason="OpenBLAS is what makes dense weights pay on the CPU (Debian: libopenblas0)",
)
def test_on_linux_mlx_uses_openblas_and_float32_weights_and_answers_as_before() -> None:
    fast = run_python(ENGINE_FACTS.format(prompt=PROMPT))
    assert fast["openblas"] is True
    assert fast["quantized"] == 0, "every quantized layer should be dense on the CPU"
    assert fast["chunk"] == 64

    # The same engine where OpenBLAS cannot be found: quantized layers, the small chunk.
    slow = run_python(
        "import deskloop.engines.mlx_cpu as mlx_cpu\n"
        "mlx_cpu.OPENBLAS_LIBRARY = 'libno-such-blas.so.0'\n"
        + textwrap.dedent(ENGINE_FACTS.format(prompt=PROMPT))
    )
    assert slow["openblas"] is False
    assert isinstance(slow["quantized"], int) and slow["quantized"] > 0
    assert slow["chunk"] == 16
    # Dequantized weights are the quantized ones, exactly: greedy answers agree.
    assert fast["tokens"] == slow["tokens"]


def test_dequantized_layers_give_the_quantized_models_logits() -> None:
    import mlx.core as mx
    from mlx.utils import tree_flatten

    from deskloop.engines.mlx_cpu import _swap_quantized_layers, dense_bytes
    from deskloop.engines.mlx_gguf import load_gguf_model

    model = load_gguf_model(embedded_model_path()).model
    tokens = mx.array([[1, 9690, 198, 2683, 314, 260, 3575, 282, 4649, 47, 2]])
    before = np.asarray(model(tokens)[0].astype(mx.float32))
    expected = dense_bytes(model)
    _swap_quantized_layers(model)
    after = np.asarray(model(tokens)[0].astype(mx.float32))
    weights = sum(value.nbytes for _, value in tree_flatten(model.parameters()))
    assert weights >= expected
    assert (before.argmax(axis=-1) == after.argmax(axis=-1)).all()
    assert np.abs(before - after).max() < 0.05 * np.abs(before).max()
