"""llama.cpp's llama-server for the slow tests: found, or built once, and started.

The build is benchmarks/peer_llama_server.py's (llama.cpp from the sdist of the installed
llama-cpp-python, cached in ~/.cache/deskloop/llama-server), run in a child process with
a time limit. The models: the embedded SmolLM2 and the Qwen2.5-Coder-0.5B GGUF that
shared/models/qwen2.5-coder-0.5b.sh assembles from registry packages.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"
# About 10 minutes on 2 idle cores (peer_llama_server.py); shared cores take longer.
BUILD_TIMEOUT_S = 60 * 60
QWEN_GGUF = Path(
    os.environ.get(
        "DESKLOOP_QWEN_GGUF", Path.home() / ".cache/deskloop/models/qwen2.5-coder-0.5b-q4_k_m.gguf"
    )
)
QWEN_SCRIPT = REPO.parent / "shared" / "models" / "qwen2.5-coder-0.5b.sh"
QWEN_TIMEOUT_S = 20 * 60


def peer() -> ModuleType:
    """benchmarks/peer_llama_server.py, loaded by path (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "peer_llama_server", BENCHMARKS / "peer_llama_server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def llama_server_binary() -> Path:
    """The cached build (or $LLAMA_SERVER); else it is built now, within BUILD_TIMEOUT_S.

    A build already running (scripts/test.sh starts one in the background) is waited for.
    """
    given = os.environ.get("LLAMA_SERVER")
    if given:
        return Path(given)
    cached = peer().built_binary()
    if cached is not None:
        return Path(cached)
    if shutil.which("cmake") is None:
        pytest.skip("building llama-server needs cmake")
    script = "import sys, peer_llama_server as p; print(p.find_or_build(lambda s: print(s, file=sys.stderr)))"
    try:
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=BENCHMARKS,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"building llama-server took over {BUILD_TIMEOUT_S} s; run it once by hand")
    if done.returncode != 0:
        pytest.fail(f"building llama-server failed:\n{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def qwen_gguf() -> Path:
    if QWEN_GGUF.is_file():
        return QWEN_GGUF
    if not QWEN_SCRIPT.is_file():
        pytest.skip(f"no Qwen GGUF at {QWEN_GGUF} and no {QWEN_SCRIPT} to assemble it")
    done = subprocess.run(
        ["bash", str(QWEN_SCRIPT), str(QWEN_GGUF)],
        capture_output=True,
        text=True,
        timeout=QWEN_TIMEOUT_S,
    )
    if done.returncode != 0:
        pytest.skip(f"the Qwen GGUF could not be assembled: {done.stderr[-500:]}")
    return Path(done.stdout.strip().splitlines()[-1])


# One thread: the suite runs three test groups on two cores, and llama.cpp's threads meet at
# a barrier after every layer, so a second thread whose core is taken stalls both (the agent
# test through llama-server took 1242 s with 2 threads beside another llama-server, 133 s alone).
THREADS = 1


@contextmanager
def serving(gguf: Path, *, context: int = 4096) -> Iterator[str]:
    """llama-server (`--jinja`, one slot, one thread) on `gguf`; yields its base URL."""
    with peer().llama_server(llama_server_binary(), gguf, context=context, threads=THREADS) as (
        url,
        _,
    ):
        yield str(url)
