"""A scripted engine that replays given outputs token by token. For tests only.

It tokenizes bytewise (one token per UTF-8 byte, plus ChatML's two special tokens),
keeps a prefix cache like a real engine, honours max_tokens, stop tokens and cancel,
and can be slowed down to test pings and disconnects. It ignores token guides, unless
made `guided`: then it has a byte-level llguidance tokenizer, tells the guide every
token it writes, and, with `fast_forward` on, writes what the grammar forces (where the
script agrees) as a real engine does: without a pass of its own, so without the
per-token delay, and counted in `last_decode` (issue 21). The output is the script
either way.
It is never a default: `deskloop serve --engine scripted --script FILE` asks for it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from deskloop.engines.base import (
    DecodeStats,
    EngineError,
    ForcingGuide,
    LocalEngine,
    ModelInfo,
    ModelNotFound,
    PrefillReport,
    Sampling,
    TokenGuide,
)

IM_START, IM_END = 256, 257
SPECIAL = {"<|im_start|>": IM_START, "<|im_end|>": IM_END}


class ScriptExhausted(EngineError):
    """Every scripted output has been used."""


class ScriptedEngine(LocalEngine):
    name = "scripted"

    def __init__(
        self,
        outputs: list[str],
        *,
        model_id: str = "scripted",
        context_window: int = 8192,
        token_delay_s: float = 0.0,
        prefill_delay_s: float = 0.0,
        repeat_last: bool = False,
        guided: bool = False,
    ):
        self.outputs = list(outputs)
        self.guided = guided
        self._guidance_tokenizer: Any = None
        self.token_delay_s = token_delay_s
        self.prefill_delay_s = prefill_delay_s
        self.repeat_last = repeat_last
        # Every prompt and sampling received, for tests to inspect.
        self.prompts: list[list[int]] = []
        self.samplings: list[Sampling] = []
        self._info = ModelInfo(
            model_id=model_id,
            context_window=context_window,
            chat_template=None,
            eos_token="<|im_end|>",
            architecture="scripted",
        )
        self._cache: list[int] = []
        self._used = 0

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def vocab_size(self) -> int:
        return 258

    @property
    def stop_token_ids(self) -> frozenset[int]:
        return frozenset({IM_END})

    def tokenize(self, text: str) -> list[int]:
        tokens: list[int] = []
        position = 0
        while position < len(text):
            for marker, token in SPECIAL.items():
                if text.startswith(marker, position):
                    tokens.append(token)
                    position += len(marker)
                    break
            else:
                tokens.extend(text[position].encode())
                position += 1
        return tokens

    def token_bytes(self, token: int) -> bytes:
        for marker, special in SPECIAL.items():
            if token == special:
                return marker.encode()
        return bytes([token])

    def guidance_tokenizer(self) -> Any:
        if not self.guided:
            return super().guidance_tokenizer()
        if self._guidance_tokenizer is None:
            from llguidance import LLTokenizer, TokenizerWrapper

            self._guidance_tokenizer = LLTokenizer(
                TokenizerWrapper(_ByteVocabulary(self)), eos_token=[IM_END]
            )
        return self._guidance_tokenizer

    def _next_output(self) -> str:
        if self._used < len(self.outputs):
            self._used += 1
            return self.outputs[self._used - 1]
        if self.repeat_last and self.outputs:
            return self.outputs[-1]
        raise ScriptExhausted(f"the script's {len(self.outputs)} outputs are used up")

    def generate(
        self,
        prompt: Sequence[int],
        sampling: Sampling,
        *,
        cancel: threading.Event,
        guide: TokenGuide | None = None,
        on_prefill: Callable[[PrefillReport], None] | None = None,
    ) -> Iterator[int]:
        started = time.perf_counter()
        prompt = list(prompt)
        self.prompts.append(prompt)
        self.samplings.append(sampling)
        reused = 0
        for ours, theirs in zip(self._cache, prompt, strict=False):
            if ours != theirs:
                break
            reused += 1
        if self.prefill_delay_s:
            cancel.wait(self.prefill_delay_s)
        self._cache = list(prompt)
        output = [*self.tokenize(self._next_output()), IM_END]
        if on_prefill:
            on_prefill(PrefillReport(len(prompt), reused, time.perf_counter() - started))
        stats = self.last_decode = DecodeStats()
        steered = guide if self.guided else None
        forcing = steered if self.fast_forward and isinstance(steered, ForcingGuide) else None
        position = 0

        def forced_run() -> list[int]:
            """The script's next tokens as far as they are what the grammar forces."""
            assert forcing is not None
            forced = forcing.forced_tokens()[: sampling.max_tokens - position]
            agreed = 0
            for ours, theirs in zip(forced, output[position:], strict=False):
                if ours != theirs:
                    break
                agreed += 1
            return forced[:agreed]

        while True:
            if forcing is not None:
                # Written without a pass: after the prompt (the opener), after each choice.
                for token in forced_run():
                    if cancel.is_set():
                        return
                    forcing.accept(token)
                    self._cache.append(token)
                    position += 1
                    stats.tokens += 1
                    stats.forced += 1
                    yield token
                if forcing.is_stopped():
                    return
            if cancel.is_set() or position >= sampling.max_tokens or position >= len(output):
                return
            if stats.tokens > stats.forced:  # a choice came out: it is evaluated
                stats.passes += 1  # (with what the grammar forced after it) to choose the next
            token = output[position]
            if token in self.stop_token_ids:
                return
            if self.token_delay_s:
                time.sleep(self.token_delay_s)
            if steered is not None:
                steered.accept(token)
            self._cache.append(token)
            position += 1
            stats.tokens += 1
            yield token


class _ByteVocabulary:
    """The scripted engine's vocabulary as llguidance's TokenizerWrapper reads it."""

    eos_token_id = IM_END
    bos_token_id = None
    special_token_ids = (IM_START, IM_END)

    def __init__(self, engine: ScriptedEngine) -> None:
        self.tokens = [engine.token_bytes(token) for token in range(engine.vocab_size)]

    def __call__(self, text: bytes | str) -> list[int]:
        return list(text.encode() if isinstance(text, str) else text)


def load_scripted_engine(model: str = "", **options: Any) -> ScriptedEngine:
    """Load a script: a JSON list of outputs, or {"outputs": [...], "token_delay_s": ...}."""
    script = options.get("script") or model
    if not script:
        raise ModelNotFound("the scripted engine needs --script FILE (a JSON list of outputs)")
    path = Path(script)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelNotFound(f"cannot read the script {path}: {exc}") from exc
    if isinstance(data, list):
        data = {"outputs": data}
    if not isinstance(data, dict) or not all(isinstance(o, str) for o in data.get("outputs", [])):
        raise ModelNotFound(f'{path}: expected a list of strings or {{"outputs": [...]}}')
    return ScriptedEngine(
        data["outputs"],
        model_id=str(data.get("model_id", "scripted")),
        context_window=int(options.get("context_window") or data.get("context_window", 8192)),
        token_delay_s=float(data.get("token_delay_s", 0.0)),
        prefill_delay_s=float(data.get("prefill_delay_s", 0.0)),
        repeat_last=bool(data.get("repeat_last", False)),
        guided=bool(data.get("guided", False)),
    )
