"""From a Messages request to the prompt text an in-process model reads."""

from __future__ import annotations

from dataclasses import dataclass

from deskloop.engines.base import ModelInfo
from deskloop.server.chat_template import render_chat
from deskloop.server.protocol import Message, MessagesRequest, TextBlock, Tool
from deskloop.server.tool_formats.base import ToolFormat

# Claude Code puts this line first in `system`, with a `cch=` value that changes on
# every request: left in, it defeats every prefix cache (PROTOCOL-NOTES.md).
VOLATILE_SYSTEM_PREFIXES = ("x-anthropic-billing-header:",)


def clean_system_text(text: str) -> str:
    """The system text without lines that change per request and mean nothing to the model."""
    lines = text.splitlines()
    kept = [line for line in lines if not line.lstrip().startswith(VOLATILE_SYSTEM_PREFIXES)]
    return "\n".join(kept).strip("\n")


@dataclass(frozen=True)
class RenderedPrompt:
    text: str
    # Text of a trailing assistant message the model continues from (Anthropic "prefill").
    prefill: str


def _split_prefill(messages: list[Message]) -> tuple[list[Message], str]:
    """A trailing assistant message made only of text is continued, not answered."""
    if not messages or messages[-1].role != "assistant":
        return messages, ""
    blocks = messages[-1].blocks()
    if not all(isinstance(block, TextBlock) for block in blocks):
        return messages, ""
    text = "".join(block.text for block in blocks if isinstance(block, TextBlock))
    # The cloud API refuses a prefill that ends in whitespace; trimming keeps clients working.
    return messages[:-1], text.rstrip()


def render_prompt(
    request: MessagesRequest,
    tools: list[Tool],
    tool_format: ToolFormat,
    info: ModelInfo,
) -> RenderedPrompt:
    messages, prefill = _split_prefill(list(request.messages))
    template_input = tool_format.template_input(
        clean_system_text(request.system_text()), messages, tools
    )
    text = render_chat(
        info.chat_template,
        template_input.messages,
        tools=template_input.tools,
        bos_token=info.bos_token,
        eos_token=info.eos_token,
        add_generation_prompt=True,
    )
    return RenderedPrompt(text + prefill, prefill)
