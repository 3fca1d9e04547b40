"""The in-process engines on the embedded model: prefill and decode speed, and our loop's overhead.

For each engine: cold prefill tokens/s of a chat prompt, greedy decode tokens/s through
`LocalEngine.generate`, and the same decode as a bare loop over the library (llama.cpp's
eval + argmax; MLX's model call + argmax). Prints figures and ratios; asserts nothing.
Target (issue 2): the server reaches >= 95% of the direct engine, so the engine's own
loop should cost a few percent at most over the bare library loop.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from deskloop.engines import create_engine
from deskloop.engines.base import LocalEngine, PrefillReport, Sampling
from deskloop.engines.llamacpp import LlamaCppEngine
from deskloop.engines.mlx import MlxEngine

FILLER = (
    "You operate a desktop. Read the screen text, pick one element id, and call one tool. "
    "Keep answers short and never invent element ids. "
)


@dataclass(frozen=True)
class EngineFigures:
    prefill_tokens_per_second: float
    decode_tokens_per_second: float
    bare_decode_tokens_per_second: float


def chat_prompt(engine: LocalEngine, prompt_tokens: int) -> list[int]:
    """A system prompt grown to about `prompt_tokens`, then a user turn asking for a story."""
    system = FILLER
    while len(engine.tokenize(system)) < prompt_tokens:
        system += FILLER
    text = (
        f"<|im_start|>system\n{system}<|im_end|>\n"
        "<|im_start|>user\nWrite a long story about a dragon.<|im_end|>\n<|im_start|>assistant\n"
    )
    return engine.tokenize(text)


def evict(engine: LocalEngine) -> None:
    """Replace the cached prompt with an unrelated one, so the next prefill starts cold."""
    unrelated = engine.tokenize("<|im_start|>user\nunrelated<|im_end|>\n")
    for _ in engine.generate(
        unrelated, Sampling(max_tokens=1, temperature=0), cancel=threading.Event()
    ):
        pass


def generate_timed(
    engine: LocalEngine, prompt: list[int], decode_tokens: int
) -> tuple[PrefillReport, float, list[int]]:
    """Prefill report, decode tokens/s after the first token, and the tokens produced."""
    reports: list[PrefillReport] = []
    tokens: list[int] = []
    first_token_at = 0.0
    sampling = Sampling(max_tokens=decode_tokens, temperature=0)
    for token in engine.generate(
        prompt, sampling, cancel=threading.Event(), on_prefill=reports.append
    ):
        tokens.append(token)
        if len(tokens) == 1:
            first_token_at = time.perf_counter()
    return reports[0], (len(tokens) - 1) / (time.perf_counter() - first_token_at), tokens


def bare_decode(
    engine: LlamaCppEngine | MlxEngine, prompt: list[int], first: int, steps: int
) -> float:
    """The library's own forward call and an argmax, on the engine's cache holding `prompt`."""
    engine._forget_from(len(prompt))
    if isinstance(engine, LlamaCppEngine):
        llama, vocab = engine._llama, engine.vocab_size

        def step(token: int) -> int:
            llama.eval([token])
            logits = np.ctypeslib.as_array(llama._ctx.get_logits_ith(-1), shape=(vocab,))
            return int(np.argmax(logits))

        rate = timed_steps(step, first, steps)
        engine._drop_cache_after(len(prompt))  # the bare steps bypassed the engine's bookkeeping
        return rate

    import mlx.core as mx
    from mlx_lm.models.cache import trim_prompt_cache

    model, cache = engine._model, engine._cache

    def mlx_step(token: int) -> int:
        return int(mx.argmax(model(mx.array([[token]]), cache=cache)[0, -1]).item())

    rate = timed_steps(mlx_step, first, steps)
    trim_prompt_cache(cache, steps)
    return rate


def timed_steps(step: Callable[[int], int], first: int, steps: int) -> float:
    token = first
    started = time.perf_counter()
    for _ in range(steps):
        token = step(token)
    return steps / (time.perf_counter() - started)


def bench(
    name: str, prompt_tokens: int, decode_tokens: int, rounds: int, threads: int
) -> EngineFigures:
    options = {"threads": threads} if threads else {}
    engine = create_engine(name, "", context_window=4096, **options)
    assert isinstance(engine, LlamaCppEngine | MlxEngine)
    prompt = chat_prompt(engine, prompt_tokens)
    evict(engine)
    cold, _, _ = generate_timed(engine, prompt, 1)
    prefill_rate = (cold.prompt_tokens - cold.cached_tokens) / cold.seconds
    ours: list[float] = []
    bare: list[float] = []
    for _ in range(rounds):  # interleaved, so that load from other processes hits both alike
        _, rate, tokens = generate_timed(engine, prompt, decode_tokens)
        ours.append(rate)
        bare.append(bare_decode(engine, prompt, tokens[0], len(tokens) - 1))
    engine.close()
    decode_rate, bare_rate = statistics.median(ours), statistics.median(bare)
    print(
        f"{name}: prompt {len(prompt)} tokens, cold prefill {prefill_rate:.1f} tok/s; "
        f"decode {decode_rate:.1f} tok/s through generate() vs {bare_rate:.1f} tok/s bare "
        f"(ratio {decode_rate / bare_rate:.3f}, median of {rounds} rounds of {len(tokens) - 1} tokens)"
    )
    return EngineFigures(prefill_rate, decode_rate, bare_rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["llamacpp", "mlx"])
    parser.add_argument(
        "--prompt-tokens", type=int, default=120, help="MLX prefills ~10 tok/s on a CPU"
    )
    parser.add_argument("--decode-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=0, help="llama.cpp threads (default: all cores)"
    )
    args = parser.parse_args()
    figures = {
        name: bench(name, args.prompt_tokens, args.decode_tokens, args.rounds, args.threads)
        for name in args.engines
    }
    if {"llamacpp", "mlx"} <= figures.keys():
        llama, mlx = figures["llamacpp"], figures["mlx"]
        print(
            f"mlx / llamacpp: prefill {mlx.prefill_tokens_per_second / llama.prefill_tokens_per_second:.3f}, "
            f"decode {mlx.decode_tokens_per_second / llama.decode_tokens_per_second:.3f}"
        )


if __name__ == "__main__":
    main()
