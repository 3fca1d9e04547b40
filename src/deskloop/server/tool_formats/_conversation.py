"""Anthropic messages to chat-template messages, shared by every format family.

Templates differ in what they accept, so the output is the lowest common shape: string
contents, user/assistant turns that alternate (merged when adjacent), `system` only
first. Mid-conversation system messages become tagged user text, so they still reach
the model without breaking templates that insist on alternation (Mistral, Llama).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deskloop.server.protocol import (
    DocumentBlock,
    ImageBlock,
    Message,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    block_text,
)

# How a format writes one past call into assistant text, when its template has no `tool_calls`.
CallWriter = Callable[[ToolUseBlock], str]
# How a format writes tool results into user text, when its template has no `tool` role.
ResultWriter = Callable[[str, ToolResultBlock], str]


def result_text(result: ToolResultBlock) -> str:
    """A tool result as text; images are named (text-only models), errors are marked."""
    text = result.text()
    return f"Error: {text}" if result.is_error else text


def _system_note(text: str) -> str:
    return f"[System] {text}"


class _Builder:
    def __init__(self) -> None:
        self.out: list[dict[str, Any]] = []

    def add_text(self, role: str, text: str) -> None:
        last = self.out[-1] if self.out else None
        if last is not None and last["role"] == role and not last.get("tool_calls"):
            last["content"] = f"{last['content']}\n\n{text}" if last["content"] else text
        else:
            self.out.append({"role": role, "content": text})

    def add(self, message: dict[str, Any]) -> None:
        self.out.append(message)


def to_template_messages(
    system: str,
    messages: list[Message],
    *,
    write_call: CallWriter | None = None,
    write_result: ResultWriter | None = None,
    call_id: Callable[[str], str] = lambda tool_use_id: tool_use_id,
) -> list[dict[str, Any]]:
    """Template messages for a conversation.

    Without `write_call`, past calls go to `tool_calls` (arguments as a dict, as
    Hugging Face templates expect); without `write_result`, results become `tool`
    messages carrying `tool_call_id` and the tool's `name`.
    """
    builder = _Builder()
    system_parts = [system] if system else []
    leading = True
    names: dict[str, str] = {}
    for message in messages:
        if message.role == "system":
            text = "\n".join(_plain_text(block) for block in message.blocks())
            if leading:
                system_parts.append(text)
            else:
                builder.add_text("user", _system_note(text))
            continue
        leading = False
        if message.role == "assistant":
            _add_assistant(builder, message, write_call, call_id, names)
        else:
            _add_user(builder, message, write_result, call_id, names)
    if system_parts:
        builder.out.insert(0, {"role": "system", "content": "\n\n".join(system_parts)})
    return builder.out


def _plain_text(block: Any) -> str:
    if isinstance(block, TextBlock | ImageBlock | DocumentBlock):
        return block_text(block)
    return ""


def _add_assistant(
    builder: _Builder,
    message: Message,
    write_call: CallWriter | None,
    call_id: Callable[[str], str],
    names: dict[str, str],
) -> None:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.blocks():
        if isinstance(block, ToolUseBlock):
            names[block.id] = block.name
            if write_call is not None:
                texts.append(write_call(block))
            else:
                calls.append(
                    {
                        "id": call_id(block.id),
                        "type": "function",
                        "function": {"name": block.name, "arguments": block.input},
                    }
                )
        elif isinstance(block, TextBlock | ImageBlock | DocumentBlock):
            texts.append(block_text(block))
        # thinking blocks are the model's scratch work from an earlier turn: dropped.
    content = "\n".join(text for text in texts if text)
    if calls:
        builder.add({"role": "assistant", "content": content, "tool_calls": calls})
    else:
        builder.add_text("assistant", content)


def _add_user(
    builder: _Builder,
    message: Message,
    write_result: ResultWriter | None,
    call_id: Callable[[str], str],
    names: dict[str, str],
) -> None:
    texts: list[str] = []
    for block in message.blocks():
        if isinstance(block, ToolResultBlock):
            name = names.get(block.tool_use_id, "")
            if write_result is not None:
                texts.append(write_result(name, block))
            else:
                builder.add(
                    {
                        "role": "tool",
                        "tool_call_id": call_id(block.tool_use_id),
                        "name": name,
                        "content": result_text(block),
                    }
                )
        else:
            texts.append(_plain_text(block))
    text = "\n".join(text for text in texts if text)
    if text:
        builder.add_text("user", text)


def openai_tools(tools: list[Any]) -> list[dict[str, Any]]:
    """Anthropic tools as the OpenAI-style function list chat templates render."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description or "",
                "parameters": tool.input_schema,
            },
        }
        for tool in tools
    ]
