"""MLX on a CPU (Linux's `mlx-cpu` wheel) at the speed of an optimized BLAS.

Measured on a 2-core x86-64 machine with SmolLM2-135M (Q8_0): the wheel links the
reference BLAS it bundles (a 64x576 by 576x1536 float32 product took 43 ms; 1.1 ms with
OpenBLAS), and MLX's quantized matmul has no fast CPU kernel either, so a 64-token prefill
took 6.8 s and a decode step 0.17 s. With OpenBLAS loaded before MLX and the weights
dequantized to float32, the same prefill takes 0.32 s and a step 0.085 s.

MLX resolves its BLAS symbols (`cblas_sgemm`, ...) when `mlx.core` is first imported; a
library already loaded with RTLD_GLOBAL comes first in that lookup, so OpenBLAS has to be
loaded before any `import mlx`. Without it (no libopenblas0), the quantized weights stay
quantized: dense weights through the reference BLAS are no faster and take 4x the memory.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import os
import platform
import sys
from typing import Any

from deskloop.engines.cores import CoreBudget

log = logging.getLogger(__name__)

OPENBLAS_LIBRARY = "libopenblas.so.0"  # Debian/Ubuntu: libopenblas0 (or -pthread)
# Dense float32 weights are kept only while they fit in this share of the machine's memory.
DENSE_MEMORY_SHARE = 0.25
FAST_BLAS_HINT = (
    "MLX on this CPU runs without an optimized BLAS; install OpenBLAS for about 20x "
    "faster prefill (Debian/Ubuntu: apt-get install libopenblas0)"
)

_fast_blas: str | None = None


class BlasThreads:
    """OpenBLAS's thread count, following the cores the rest of the machine leaves free
    (cores.py), as llama.cpp's does: OpenBLAS threads wait for each other too. Measured here
    with another process busy on one of 2 cores, 256 tokens prefilled in 2.9-4.0 s with 2
    threads and 1.6 s with 1; idle, 2 threads took 1.45 s."""

    def __init__(self) -> None:
        self._set_threads = ctypes.CDLL(OPENBLAS_LIBRARY).openblas_set_num_threads
        self._budget = CoreBudget()
        self._threads = 0

    def request_starts(self) -> None:
        self._budget.request_starts()

    def fit(self) -> None:
        free = self._budget.free()
        if free != self._threads:
            self._set_threads(free)
            self._threads = free


def use_fast_blas() -> str | None:
    """Load OpenBLAS for MLX to use, if this is Linux, it is installed, and MLX is not
    imported yet; return the library in effect (None: MLX keeps its reference BLAS)."""
    global _fast_blas
    if _fast_blas is not None or "mlx.core" in sys.modules or platform.system() != "Linux":
        return _fast_blas
    try:
        ctypes.CDLL(OPENBLAS_LIBRARY, mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return None
    _fast_blas = OPENBLAS_LIBRARY
    return _fast_blas


def dense_bytes(model: Any) -> int:
    """The bytes `model`'s quantized layers take once dequantized to float32."""
    nn = _mlx_nn()
    total = 0
    for _, module in model.named_modules():
        if isinstance(module, (nn.QuantizedLinear, nn.QuantizedEmbedding)):
            rows, packed = module.weight.shape
            total += rows * packed * (32 // module.bits) * 4
    return total


def memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def dequantize_for_cpu(model: Any) -> bool:
    """Swap `model`'s quantized layers for float32 ones when that is the faster way on this
    device: MLX on the CPU with OpenBLAS in effect, and the dense weights fit in memory.
    Returns whether it did."""
    import mlx.core as mx

    if mx.default_device().type != mx.DeviceType.cpu:
        return False
    if _fast_blas is None:
        log.info(FAST_BLAS_HINT)
        return False
    needed = dense_bytes(model)
    if needed == 0:
        return False
    if needed > memory_bytes() * DENSE_MEMORY_SHARE:
        log.info(
            "MLX on the CPU: the weights stay quantized (float32 would take %d MB)", needed >> 20
        )
        return False
    _swap_quantized_layers(model)
    log.info("MLX on the CPU: weights dequantized to float32 for OpenBLAS (%d MB)", needed >> 20)
    return True


def _swap_quantized_layers(model: Any) -> None:
    import mlx.core as mx
    from mlx.utils import tree_unflatten

    nn = _mlx_nn()
    dense: list[tuple[str, Any]] = []
    for path, module in model.named_modules():
        if isinstance(module, nn.QuantizedLinear):
            weight = _dequantized(module)
            linear = nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in module)
            linear.weight = weight
            if "bias" in module:
                linear.bias = module.bias.astype(mx.float32)
            dense.append((path, linear))
        elif isinstance(module, nn.QuantizedEmbedding):
            weight = _dequantized(module)
            embedding = nn.Embedding(weight.shape[0], weight.shape[1])
            embedding.weight = weight
            dense.append((path, embedding))
    model.update_modules(tree_unflatten(dense))
    mx.eval(model.parameters())


def _dequantized(module: Any) -> Any:
    import mlx.core as mx

    return mx.dequantize(
        module.weight,
        module.scales,
        module.get("biases"),
        group_size=module.group_size,
        bits=module.bits,
        mode=getattr(module, "mode", "affine"),
    ).astype(mx.float32)


def _mlx_nn() -> Any:
    # mlx ships no type information for its layers
    return importlib.import_module("mlx.nn")
