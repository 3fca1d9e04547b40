"""Rendering a conversation with the model's own Jinja chat template.

Templates come from the GGUF metadata (`tokenizer.chat_template`) or a tokenizer
config. They run in a sandbox with the helpers Hugging Face templates expect
(`raise_exception`, `strftime_now`, `tojson` that keeps non-ASCII). A model without a
template gets `FALLBACK_TEMPLATE`, plain ChatML, which most small instruct models
were trained on or tolerate.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from deskloop.errors import DeskloopError

FALLBACK_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class TemplateFailed(DeskloopError):
    """The chat template raised or could not be compiled."""


def _raise_exception(message: str) -> None:
    raise TemplateFailed(f"the model's chat template refused the conversation: {message}")


def _tojson(value: Any, indent: int | None = None, **_: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _strftime_now(pattern: str) -> str:
    return datetime.now().strftime(pattern)


@lru_cache(maxsize=8)
def _compile(source: str) -> Any:
    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    environment.filters["tojson"] = _tojson
    environment.globals["raise_exception"] = _raise_exception
    environment.globals["strftime_now"] = _strftime_now
    try:
        return environment.from_string(source)
    except TemplateError as exc:
        raise TemplateFailed(f"the model's chat template does not compile: {exc}") from exc


def render_chat(
    template: str | None,
    messages: list[dict[str, Any]],
    *,
    tools: list[dict[str, Any]] | None = None,
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
) -> str:
    """The prompt text the model sees for `messages` (and `tools`, if the template renders them)."""
    compiled = _compile(template or FALLBACK_TEMPLATE)
    try:
        rendered: str = compiled.render(
            messages=messages,
            tools=tools,
            bos_token=bos_token,
            eos_token=eos_token,
            add_generation_prompt=add_generation_prompt,
        )
    except TemplateFailed:
        raise
    except Exception as exc:  # a template is foreign code: any failure is the template's
        raise TemplateFailed(f"the model's chat template failed: {exc}") from exc
    return rendered


def template_renders_tools(template: str | None) -> bool:
    """Whether a template has its own tool section (it mentions the `tools` variable)."""
    return bool(template) and "tools" in (template or "")
