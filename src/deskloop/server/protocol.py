"""The Messages API request, as real clients send it, validated into typed models.

Unknown top-level fields (`context_management`, `output_config`, ...) are accepted and
ignored: Claude Code sends several that a local model has no use for.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class _Block(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextBlock(_Block):
    type: Literal["text"]
    text: str


class ImageBlock(_Block):
    type: Literal["image"]
    source: dict[str, Any]


class DocumentBlock(_Block):
    type: Literal["document"]
    source: dict[str, Any]
    title: str | None = None


class ToolUseBlock(_Block):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(_Block):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[TextBlock | ImageBlock | DocumentBlock] | None = None
    is_error: bool = False

    def text(self) -> str:
        """The result's text; images are named, not inlined (text-only models)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(block_text(block) for block in self.content)


class ThinkingBlock(_Block):
    type: Literal["thinking"]
    thinking: str
    signature: str | None = None


class RedactedThinkingBlock(_Block):
    type: Literal["redacted_thinking"]
    data: str


ContentBlock = Annotated[
    TextBlock
    | ImageBlock
    | DocumentBlock
    | ToolUseBlock
    | ToolResultBlock
    | ThinkingBlock
    | RedactedThinkingBlock,
    Field(discriminator="type"),
]


def block_text(block: TextBlock | ImageBlock | DocumentBlock) -> str:
    if isinstance(block, TextBlock):
        return block.text
    if isinstance(block, DocumentBlock):
        data = block.source.get("data")
        if block.source.get("type") == "text" and isinstance(data, str):
            return data
        return f"[document: {block.title or 'attached'}]"
    media = block.source.get("media_type", "image")
    return f"[image: {media}]"


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    # "system" inside messages: newer Claude Code versions send it, even as the last one.
    role: Literal["user", "assistant", "system"]
    content: str | list[ContentBlock]

    def blocks(self) -> list[ContentBlock]:
        if isinstance(self.content, str):
            return [TextBlock(type="text", text=self.content)]
        return list(self.content)


class Tool(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,128}$")
    description: str | None = None
    input_schema: dict[str, Any]
    type: str | None = None


class ToolChoice(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool = False


class MessagesRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    messages: list[Message] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    metadata: dict[str, Any] | None = None
    stop_sequences: list[str] | None = None
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0)
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: dict[str, Any] | None = None

    @field_validator("tools", mode="before")
    @classmethod
    def _drop_server_tools(cls, value: Any) -> Any:
        # Server-side tools (web search, code execution) carry a `type` and no schema;
        # a local model cannot run them, so they are left out rather than refused.
        if isinstance(value, list):
            return [
                tool
                for tool in value
                if not (isinstance(tool, dict) and "input_schema" not in tool and tool.get("type"))
            ]
        return value

    def system_text(self) -> str:
        if self.system is None:
            return ""
        if isinstance(self.system, str):
            return self.system
        return "\n".join(block.text for block in self.system)


class CountTokensRequest(MessagesRequest):
    max_tokens: int = Field(default=1, ge=1)


class RequestInvalid(ValueError):
    """A request that fails validation; the message names the field and the problem."""


def describe_validation_error(error: ValidationError) -> str:
    """One readable line per problem, with the field path as the API would name it."""
    lines = []
    for problem in error.errors()[:5]:
        where = ".".join(
            str(part) for part in problem["loc"] if not str(part).startswith("function-")
        )
        message = problem["msg"]
        if problem["type"] == "missing":
            message = "Field required"
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines)


def check_conversation(request: MessagesRequest) -> None:
    """The ordering rules the cloud API enforces, with its wording where clients rely on it."""
    roles = [message.role for message in request.messages if message.role != "system"]
    if not roles:
        raise RequestInvalid("messages: at least one user or assistant message is required")
    previous_tool_ids: set[str] = set()
    for position, message in enumerate(request.messages):
        blocks = message.blocks()
        for block in blocks:
            if isinstance(block, ToolUseBlock) and message.role != "assistant":
                raise RequestInvalid(
                    f"messages.{position}: tool_use blocks may only appear in assistant messages"
                )
            if isinstance(block, ToolResultBlock):
                if message.role != "user":
                    raise RequestInvalid(
                        f"messages.{position}: tool_result blocks may only appear in user messages"
                    )
                if block.tool_use_id not in previous_tool_ids:
                    raise RequestInvalid(
                        f"messages.{position}: unexpected tool_use_id found in tool_result "
                        f"blocks: {block.tool_use_id}. Each tool_result block must have a "
                        "corresponding tool_use block in the previous message."
                    )
        if message.role == "assistant":
            previous_tool_ids = {b.id for b in blocks if isinstance(b, ToolUseBlock)}
        elif message.role == "user":
            previous_tool_ids = set()
    if request.tools:
        names = [tool.name for tool in request.tools]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise RequestInvalid(f"tools: tool names must be unique, repeated: {duplicates}")
    choice = request.tool_choice
    if choice is not None and choice.type == "tool":
        if not choice.name:
            raise RequestInvalid("tool_choice.name: required when tool_choice.type is 'tool'")
        if choice.name not in {tool.name for tool in request.tools or []}:
            raise RequestInvalid(f"tool_choice.name: no tool named {choice.name!r} in tools")
    if choice is not None and choice.type in ("any", "tool") and not request.tools:
        raise RequestInvalid(f"tool_choice.type {choice.type!r} needs at least one tool in tools")
