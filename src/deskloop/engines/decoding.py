"""The decode loop shared by the in-process engines: prefix reuse, guide masking, exact sampling.

An engine supplies two primitives (drop cached positions, evaluate tokens into logits);
everything the server relies on (what is reused, when `cancel` is checked, how a
token is chosen) lives here once, so llama.cpp and MLX behave the same.
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from deskloop.engines.base import EngineError, LocalEngine, PrefillReport, Sampling, TokenGuide

Logits = npt.NDArray[np.float32]


def common_prefix_length(first: Sequence[int], second: Sequence[int]) -> int:
    """How many leading tokens two sequences share."""
    limit = min(len(first), len(second))
    for index in range(limit):
        if first[index] != second[index]:
            return index
    return limit


class TokenSampler:
    """Chooses the next token exactly as asked: temperature 0 is argmax; else top-k, then top-p.

    Order as in Hugging Face and vLLM: logits are divided by the temperature, cut to the
    top k, then to the smallest set whose probability reaches top_p.
    """

    def __init__(self, sampling: Sampling) -> None:
        self._temperature = sampling.temperature
        self._top_k = sampling.top_k if sampling.top_k and sampling.top_k > 0 else None
        self._top_p = sampling.top_p if sampling.top_p is not None and sampling.top_p < 1 else None
        self._random = np.random.default_rng(sampling.seed)

    def choose(self, logits: Logits, allowed: npt.NDArray[np.bool_] | None = None) -> int:
        """The next token from one position's logits, only among `allowed` when given."""
        scores = np.asarray(logits, dtype=np.float32)
        if allowed is not None:
            mask = _fit_mask(allowed, scores.shape[0])
            if not mask.any():
                raise EngineError("the token guide allowed no token of this model's vocabulary")
            scores = np.where(mask, scores, np.float32(-np.inf))
        if self._temperature <= 0:
            return int(np.argmax(scores))
        candidates: npt.NDArray[np.intp] = np.arange(scores.shape[0])
        if self._top_k is not None and self._top_k < scores.shape[0]:
            candidates = np.argpartition(scores, -self._top_k)[-self._top_k :]
        tempered = scores[candidates].astype(np.float64) / self._temperature
        probabilities = np.exp(tempered - tempered.max())
        probabilities /= probabilities.sum()
        if self._top_p is not None:
            order = np.argsort(-probabilities, kind="stable")
            cumulative = np.cumsum(probabilities[order])
            keep = int(np.searchsorted(cumulative, self._top_p)) + 1
            kept = order[:keep]
            candidates, probabilities = candidates[kept], probabilities[kept]
        cumulative = np.cumsum(probabilities)
        draw = self._random.random() * cumulative[-1]
        position = min(int(np.searchsorted(cumulative, draw, side="right")), len(candidates) - 1)
        return int(candidates[position])


class NativeSampler(Protocol):
    """A library's own sampler for unguided generation: chooses from the last logits in place."""

    def sample(self) -> int: ...

    def close(self) -> None: ...


def _fit_mask(allowed: npt.NDArray[np.bool_], size: int) -> npt.NDArray[np.bool_]:
    if allowed.shape[0] >= size:
        return allowed[:size]
    return np.concatenate([allowed, np.zeros(size - allowed.shape[0], dtype=np.bool_)])


class PrefixCachingEngine(LocalEngine):
    """A local engine whose KV cache holds one sequence, reused across calls up to the shared prefix."""

    prefill_chunk: int = 512  # tokens evaluated between two checks of `cancel`

    def __init__(self) -> None:
        self._cached_tokens: list[int] = []  # the tokens whose keys and values the cache holds
        self._closed = False

    def close(self) -> None:
        """Free the model; later calls raise EngineError instead of touching freed memory."""
        self._closed = True
        self._release()
        self._cached_tokens.clear()

    @abstractmethod
    def _release(self) -> None:
        """Free the library's model and cache."""

    def _require_open(self) -> None:
        if self._closed:
            raise EngineError(f"the {self.name} engine was closed; load the model again")

    @abstractmethod
    def _drop_cache_after(self, keep: int) -> int:
        """Forget every cached position from `keep` on; return how many remain.

        That is `keep`, or 0 where the cache cannot be cut (recurrent state, sliding windows)
        and was emptied instead.
        """

    @abstractmethod
    def _evaluate(self, tokens: Sequence[int]) -> Logits:
        """Run `tokens` after the cached ones; return the logits of the last one."""

    def _native_sampler(self, sampling: Sampling) -> NativeSampler | None:
        """The library's sampler for `sampling`, used when no guide steers; None: TokenSampler."""
        return None

    def generate(
        self,
        prompt: Sequence[int],
        sampling: Sampling,
        *,
        cancel: threading.Event,
        guide: TokenGuide | None = None,
        on_prefill: Callable[[PrefillReport], None] | None = None,
    ) -> Iterator[int]:
        self._require_open()
        prompt = list(prompt)
        context_window = self.info.context_window
        if not prompt:
            raise EngineError("cannot generate from an empty prompt")
        if len(prompt) > context_window:
            raise EngineError(
                f"prompt is too long: {len(prompt)} tokens > {context_window} maximum"
            )
        return self._decode(prompt, sampling, cancel, guide, on_prefill)

    def _decode(
        self,
        prompt: list[int],
        sampling: Sampling,
        cancel: threading.Event,
        guide: TokenGuide | None,
        on_prefill: Callable[[PrefillReport], None] | None,
    ) -> Iterator[int]:
        started = time.perf_counter()
        # Keep at least the last prompt token to evaluate: its logits choose the first token.
        shared = min(common_prefix_length(self._cached_tokens, prompt), len(prompt) - 1)
        self._forget_from(shared)
        reused = len(self._cached_tokens)
        logits: Logits | None = None
        for start in range(reused, len(prompt), self.prefill_chunk):
            if cancel.is_set():
                return
            logits = self._extend(prompt[start : start + self.prefill_chunk])
        assert logits is not None
        if on_prefill is not None:
            on_prefill(PrefillReport(len(prompt), reused, time.perf_counter() - started))
        sampler = TokenSampler(sampling)
        native = self._native_sampler(sampling) if guide is None else None
        stops = self.stop_token_ids
        context_window = self.info.context_window
        try:
            for produced in range(1, sampling.max_tokens + 1):
                if cancel.is_set():
                    return
                if native is not None:
                    token = native.sample()
                else:
                    token = sampler.choose(logits, guide.allowed_tokens() if guide else None)
                if guide is not None:
                    guide.accept(token)
                if token in stops:
                    return
                yield token
                full = len(self._cached_tokens) >= context_window
                if produced == sampling.max_tokens or full or cancel.is_set():
                    return
                logits = self._extend([token])
        finally:
            if native is not None:
                native.close()

    def _extend(self, tokens: list[int]) -> Logits:
        """Evaluate `tokens` and record them as cached; on failure forget the whole cache."""
        try:
            logits = self._evaluate(tokens)
        except EngineError:
            self._reset_cache()
            raise
        except (RuntimeError, ValueError, OSError) as exc:
            self._reset_cache()
            raise EngineError(f"the {self.name} engine failed while generating: {exc}") from exc
        self._cached_tokens.extend(tokens)
        return logits

    def _reset_cache(self) -> None:
        """After a failure the cache may hold positions the token list does not: drop all."""
        self._drop_cache_after(0)
        self._cached_tokens.clear()

    def _forget_from(self, keep: int) -> None:
        if keep < len(self._cached_tokens):
            del self._cached_tokens[self._drop_cache_after(keep) :]
