"""The small interfaces every engine implements.

Two kinds of engine sit behind the server:

- A `LocalEngine` runs a model in this process. The server renders the prompt with the
  model's chat template, asks the engine to tokenize it, and pulls tokens from
  `generate`, optionally steered by a `TokenGuide` (constrained decoding). Reusing the
  cached prefix of the previous prompt is the engine's business.
- An `UpstreamEngine` forwards the whole Messages request to another server
  (OpenAI-shaped or Anthropic-shaped) and yields neutral output events back.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from deskloop.errors import DeskloopError


class EngineError(DeskloopError):
    """The engine failed while loading or generating; maps to a 500 `api_error`."""


class ModelNotFound(EngineError):
    """A model reference that names no file, folder or installed package."""


class EngineUnavailable(EngineError):
    """The engine's library is not installed on this machine; the message says how to get it."""


class UpstreamError(EngineError):
    """An upstream server answered with an error; keeps its HTTP status and error type."""

    def __init__(self, message: str, *, status: int = 502, error_type: str = "api_error"):
        super().__init__(message)
        self.status = status
        self.error_type = error_type


@dataclass(frozen=True)
class Sampling:
    """Sampling as the client asked for it. `temperature == 0` means greedy, exactly."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None


@dataclass(frozen=True)
class PrefillReport:
    """What the engine did with the prompt before the first new token."""

    prompt_tokens: int
    cached_tokens: int  # tokens reused from the previous prompt, not prefilled again
    seconds: float


@dataclass
class DecodeStats:
    """What one generation cost after its prompt, kept up to date as tokens come out.

    `passes` counts forward passes after the prefill (a tree of values is one); `forced`
    the tokens the grammar forced and the engine wrote without a pass of their own, the
    opener included (it joins the prefill); `drafted` the tokens proposed from the prompt
    and verified in a pass (prompt drafts), `accepted` those of them that came out.
    """

    tokens: int = 0
    forced: int = 0
    passes: int = 0
    drafted: int = 0
    accepted: int = 0


class TokenGuide(Protocol):
    """Steers generation token by token (constrained decoding).

    Before each sampling step the engine calls `allowed_tokens`; `None` means free
    choice, otherwise a boolean mask over the vocabulary (length >= vocab size) of the
    tokens that may come next. After sampling, `accept` is told the chosen token.
    """

    def allowed_tokens(self) -> npt.NDArray[np.bool_] | None: ...

    def accept(self, token: int) -> None: ...


@runtime_checkable
class ForcingGuide(TokenGuide, Protocol):
    """A guide that can say which tokens its grammar forces, so the decode loop writes them
    without asking the model and evaluates them in one batch (fast-forward, issue 21)."""

    def forced_tokens(self) -> list[int]:
        """The tokens that must come next whatever the model would choose, not yet accepted
        (llguidance stops before a token a longer vocabulary token could span: the model
        chooses that one)."""
        ...

    def is_stopped(self) -> bool:
        """Nothing but an end-of-turn token can come next."""
        ...


@runtime_checkable
class DraftingGuide(TokenGuide, Protocol):
    """A guide that can judge a draft (tokens proposed from the prompt, issue 21) without
    taking it: the decode loop verifies only what the grammar accepts."""

    def draft_length(self, tokens: Sequence[int]) -> int:
        """How many of `tokens`, from the first, the grammar accepts here, cut after a token
        where the decode loop has more to do than choose the next one (the grammar forces
        what follows, a choice among whole values opens). Nothing is accepted."""
        ...


@dataclass(frozen=True)
class ValueCandidates:
    """The whole values a guide allows at one point, to be scored whole by the model.

    `sequences` are the values' tokens; `ends` marks the tokens that end a value (a value
    that is the start of a longer one is chosen by how likely the model ends it there).
    """

    sequences: list[list[int]]
    ends: npt.NDArray[np.bool_]


@runtime_checkable
class CallGuide(TokenGuide, Protocol):
    """A guide for tool calls: the decode loop can have it close an open call, and score
    a choice among a few whole values (`engines/decoding.py`)."""

    # Set when the call should be closed now (a runaway inside a call).
    close_requested: bool

    @property
    def required(self) -> bool:
        """A call must still arrive (tool_choice any/tool): it is closed even past max_tokens."""
        ...

    def is_complete(self) -> bool:
        """The output so far is a whole answer."""
        ...

    def closing_need(self, limit: int) -> int | None:
        """About how many tokens closing what is open takes (at most `limit` looked at);
        None when nothing is open or it cannot be closed."""
        ...

    def closing_step(self) -> list[int]:
        """Tokens the guide writes itself to close what is open (forced ones, or a closer
        such as a quote); empty where the model has to choose."""
        ...

    def value_choice(self) -> ValueCandidates | None:
        """The values allowed here when they are a small set of whole values, else None."""
        ...


@dataclass(frozen=True)
class ModelInfo:
    """What the server needs to know about the loaded model."""

    model_id: str
    context_window: int
    chat_template: str | None  # Jinja source, from GGUF metadata or tokenizer config
    bos_token: str = ""
    eos_token: str = ""
    architecture: str = ""
    path: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # Weights in the model (0: unknown); the agent treats models under ~4B as small.
    parameters: int = 0


class LocalEngine(ABC):
    """An in-process model: tokenizes, detokenizes and generates token by token.

    `generate` is synchronous and is run by the server in a worker thread, one request
    at a time per engine. It must check `cancel` before every new token and stop
    promptly when it is set (a client disconnected).
    """

    name: ClassVar[str]
    # Write the tokens a ForcingGuide forces without a forward pass each (issue 21); off
    # only to compare (the answers are the same, `server.fast_forward`).
    fast_forward: bool = True
    # Propose the tokens that followed the last few tokens' latest occurrence in the prompt
    # (a value copied from the conversation) and verify them in one batch (issue 21,
    # `server.prompt_drafts`); the answers are the same either way.
    prompt_drafts: bool = False
    # The running or last generation's costs (None before the first): tests and benches read it.
    last_decode: DecodeStats | None = None

    @property
    @abstractmethod
    def info(self) -> ModelInfo: ...

    @property
    @abstractmethod
    def vocab_size(self) -> int: ...

    @property
    @abstractmethod
    def stop_token_ids(self) -> frozenset[int]:
        """End-of-turn tokens (eos, `<|im_end|>`, `<|eot_id|>` ...)."""

    @abstractmethod
    def tokenize(self, text: str) -> list[int]:
        """Tokens of a rendered prompt; special-token text (`<|im_start|>`) becomes special tokens.

        No BOS is added unless the chat template leaves it out and the model needs one.
        """

    @abstractmethod
    def token_bytes(self, token: int) -> bytes:
        """The bytes one token stands for (may be part of a UTF-8 character)."""

    # Special tokens the tokenizer matches as whole text before anything else (`<|im_start|>`):
    # text is split at them first, so a prompt can be tokenized in pieces cut just before one.
    control_tokens: frozenset[int] = frozenset()

    def tokenize_tail(self, text: str) -> list[int] | None:
        """Tokens of `text` that starts with a control token, as they are inside a longer
        prompt (no BOS); None where this engine cannot promise that (the whole is tokenized)."""
        return None

    @abstractmethod
    def generate(
        self,
        prompt: Sequence[int],
        sampling: Sampling,
        *,
        cancel: threading.Event,
        guide: TokenGuide | None = None,
        on_prefill: Callable[[PrefillReport], None] | None = None,
    ) -> Iterator[int]:
        """Yield new tokens until a stop token (not yielded), `max_tokens`, or `cancel`.

        Calls `on_prefill` once, after the prompt is processed and before the first token.
        """

    def guidance_tokenizer(self) -> Any:
        """An `llguidance.LLTokenizer` for this model's vocabulary (for constrained decoding)."""
        raise EngineError(f"the {self.name} engine does not support constrained decoding")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Free the model."""


# Neutral output events, shared by local generation and upstream engines. The server
# turns them into SSE events or into one Message.


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ThinkingDelta:
    thinking: str


@dataclass(frozen=True)
class ThinkingSignature:
    """The signature that closes a thinking block (upstreams that sign their thinking)."""

    signature: str


@dataclass(frozen=True)
class ToolCallStart:
    id: str
    name: str


@dataclass(frozen=True)
class ToolInputDelta:
    partial_json: str


@dataclass(frozen=True)
class ToolCallEnd:
    input: dict[str, Any]  # the final, validated input


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


@dataclass(frozen=True)
class Finish:
    stop_reason: str  # end_turn | max_tokens | stop_sequence | tool_use
    stop_sequence: str | None = None


OutputEvent = (
    TextDelta
    | ThinkingDelta
    | ThinkingSignature
    | ToolCallStart
    | ToolInputDelta
    | ToolCallEnd
    | Usage
    | Finish
)


class UpstreamEngine(ABC):
    """Forwards Messages requests to another server and translates its answer back."""

    name: ClassVar[str]

    @property
    @abstractmethod
    def model_id(self) -> str: ...

    @abstractmethod
    def stream(self, request: dict[str, Any]) -> AsyncIterator[OutputEvent]:
        """Run one Messages request (already validated, `stream` ignored) upstream.

        Yields a `Usage` first (input tokens, possibly 0 when unknown until the end),
        then content events, then a final `Usage` and `Finish`.
        """

    async def count_tokens(self, request: dict[str, Any]) -> int:
        raise UpstreamError(
            "this upstream cannot count tokens", status=404, error_type="not_found_error"
        )

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Close connections."""
