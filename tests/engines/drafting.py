"""Stand-in models for the prompt-draft tests: the decode loop over a "model" that is a plain
function of the whole context, evaluated position by position (no weights)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from deskloop.engines.base import ModelInfo
from deskloop.engines.decoding import Logits, PrefixCachingEngine

VOCAB = 16
STOP = 0

NextLogits = Callable[[list[int]], Logits]


class FunctionModelEngine(PrefixCachingEngine):
    """An engine whose logits after a context are `model(context)`; it logs every batch
    (`evaluated`) and keeps what a real cache would hold (`kv`)."""

    name = "fake-function"

    def __init__(self, model: NextLogits, *, context_window: int = 64) -> None:
        super().__init__()
        self.model = model
        self.prefill_chunk = 64
        self.evaluated: list[list[int]] = []
        self.kv: list[int] = []
        self._info = ModelInfo(model_id="fake", context_window=context_window, chat_template=None)

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def vocab_size(self) -> int:
        return VOCAB

    @property
    def stop_token_ids(self) -> frozenset[int]:
        return frozenset({STOP})

    def tokenize(self, text: str) -> list[int]:
        return [int(part) for part in text.split()]

    def token_bytes(self, token: int) -> bytes:
        return str(token).encode()

    def _drop_cache_after(self, keep: int) -> int:
        del self.kv[keep:]
        return keep

    def _release(self) -> None:
        self.kv.clear()

    def _evaluate(self, tokens: Sequence[int]) -> Logits:
        self.evaluated.append(list(tokens))
        self.kv.extend(tokens)
        return self.model(list(self.kv))

    def _evaluate_rows(self, tokens: Sequence[int], first: int) -> Logits:
        self.evaluated.append(list(tokens))
        rows = []
        for index, token in enumerate(tokens):
            self.kv.append(token)
            if index >= first:
                rows.append(self.model(list(self.kv)))
        return np.stack(rows)


def writes(answer: list[int], prompt_length: int) -> NextLogits:
    """A model that writes `answer` after a prompt of `prompt_length` tokens, then STOP;
    off its answer it writes STOP."""

    def model(context: list[int]) -> Logits:
        produced = context[prompt_length:]
        logits = np.zeros(VOCAB, dtype=np.float32)
        on_track = produced == answer[: len(produced)] and len(produced) < len(answer)
        logits[answer[len(produced)] if on_track else STOP] = 10.0
        return logits

    return model


class ScriptedModelEngine(PrefixCachingEngine):
    """The decode loop over a model that writes one script: the scripted engine's bytewise
    vocabulary (and llguidance tokenizer), and logits that favour the script's next token
    after the request's prompt (end of turn once it is out, or where the answer left it).
    Unlike `ScriptedEngine` it goes through everything a real engine does: prefix cache,
    guide masks, fast-forward, drafts."""

    name = "scripted-model"

    def __init__(self, script: str, *, context_window: int = 8192) -> None:
        super().__init__()
        from deskloop.engines.scripted import ScriptedEngine

        self._vocabulary = ScriptedEngine([], guided=True, context_window=context_window)
        self.script = self._vocabulary.tokenize(script)
        self.kv: list[int] = []
        self._prompt_length = 0

    @property
    def info(self) -> ModelInfo:
        return self._vocabulary.info

    @property
    def vocab_size(self) -> int:
        return self._vocabulary.vocab_size

    @property
    def stop_token_ids(self) -> frozenset[int]:
        return self._vocabulary.stop_token_ids

    def tokenize(self, text: str) -> list[int]:
        return self._vocabulary.tokenize(text)

    def token_bytes(self, token: int) -> bytes:
        return self._vocabulary.token_bytes(token)

    def guidance_tokenizer(self) -> object:
        return self._vocabulary.guidance_tokenizer()

    def generate(self, prompt: Sequence[int], *args: Any, **kwargs: Any) -> Iterator[int]:
        self._prompt_length = len(prompt)
        return super().generate(prompt, *args, **kwargs)

    def _next(self, context: list[int]) -> Logits:
        produced = context[self._prompt_length :]
        script = self.script
        on_track = produced == script[: len(produced)] and len(produced) < len(script)
        logits = np.zeros(self.vocab_size, dtype=np.float32)
        logits[script[len(produced)] if on_track else min(self.stop_token_ids)] = 10.0
        return logits

    def _drop_cache_after(self, keep: int) -> int:
        del self.kv[keep:]
        return keep

    def _release(self) -> None:
        self.kv.clear()

    def _evaluate(self, tokens: Sequence[int]) -> Logits:
        self.kv.extend(tokens)
        return self._next(self.kv)

    def _evaluate_rows(self, tokens: Sequence[int], first: int) -> Logits:
        rows = []
        for index, token in enumerate(tokens):
            self.kv.append(token)
            if index >= first:
                rows.append(self._next(self.kv))
        return np.stack(rows)
