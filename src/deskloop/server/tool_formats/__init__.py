"""Tool-call formats: one module per model family, chosen from the model's chat template."""

from __future__ import annotations

import importlib

from deskloop.errors import DeskloopError
from deskloop.server.tool_formats.base import ToolFormat

# name -> "module:class"; a family added later registers the same way.
TOOL_FORMATS: dict[str, str] = {
    "hermes": "deskloop.server.tool_formats.hermes:HermesFormat",
    "qwen3_coder": "deskloop.server.tool_formats.qwen3_coder:Qwen3CoderFormat",
    "llama3": "deskloop.server.tool_formats.llama3:Llama3Format",
    "mistral": "deskloop.server.tool_formats.mistral:MistralFormat",
    "mistral_v11": "deskloop.server.tool_formats.mistral:MistralV11Format",
    "gemma": "deskloop.server.tool_formats.gemma:GemmaFormat",
    "generic": "deskloop.server.tool_formats.generic:GenericFormat",
}


class UnknownToolFormat(DeskloopError):
    """`--tool-format` names no known family."""


def tool_format(name: str) -> ToolFormat:
    """The format family called `name`."""
    target = TOOL_FORMATS.get(name)
    if target is None:
        known = ", ".join(sorted(TOOL_FORMATS))
        raise UnknownToolFormat(f"unknown tool format {name!r}; choose one of: {known} (or auto)")
    module_name, _, class_name = target.partition(":")
    format_class: type[ToolFormat] = getattr(importlib.import_module(module_name), class_name)
    return format_class()


def detect_tool_format(chat_template: str | None, architecture: str) -> str:
    """The family a chat template was written for; `generic` when it renders no tools.

    Checked in order of specificity: Qwen3-Coder templates also contain `<tool_call>`.
    """
    template = chat_template or ""
    if "<function=" in template and "<parameter=" in template:
        return "qwen3_coder"
    if "<tool_call>" in template:
        return "hermes"
    if "[TOOL_CALLS]" in template:
        return "mistral_v11" if "[ARGS]" in template else "mistral"
    if "<start_function_call>" in template:
        return "gemma"
    if "<|python_tag|>" in template or ("ipython" in template and "tools" in template):
        return "llama3"
    return "generic"


def choose_tool_format(chat_template: str | None, architecture: str, override: str) -> ToolFormat:
    """`override` (`--tool-format`) when given and not `auto`, else detected from the template."""
    name = override.strip().lower()
    if not name or name == "auto":
        name = detect_tool_format(chat_template, architecture)
    return tool_format(name)


__all__ = [
    "TOOL_FORMATS",
    "UnknownToolFormat",
    "choose_tool_format",
    "detect_tool_format",
    "tool_format",
]
