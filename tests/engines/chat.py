"""Chat prompts for the engine tests, rendered with the model's own template from its GGUF."""

from __future__ import annotations

from jinja2.sandbox import ImmutableSandboxedEnvironment

from deskloop.engines.base import LocalEngine

# With the template's default system line the 135M model answers the capital question with
# a list of French words (seen here); a plain system line gets "The capital of France is Paris."
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
CAPITAL_QUESTION = [SYSTEM, {"role": "user", "content": "What is the capital of France?"}]
STORY_REQUEST = [SYSTEM, {"role": "user", "content": "Write a long story about a dragon."}]


def render(engine: LocalEngine, messages: list[dict[str, str]]) -> str:
    """The prompt text, ending where the assistant's answer starts."""
    template = engine.info.chat_template
    assert template, "the embedded model's GGUF carries a chat template"
    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return environment.from_string(template).render(messages=messages, add_generation_prompt=True)


def text_of(engine: LocalEngine, tokens: list[int]) -> str:
    return b"".join(engine.token_bytes(token) for token in tokens).decode("utf-8", "replace")
