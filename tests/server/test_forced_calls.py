"""Forced calls on the embedded model, with llama.cpp and MLX alike (issue 17): a call
always arrives, however few tokens are left, and holds only its declared properties."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from deskloop.engines import create_engine
from deskloop.engines.base import LocalEngine
from deskloop.server.app import create_app
from deskloop.server.local_service import LocalModelService
from deskloop.server.protocol import Tool
from deskloop.server.tool_schema import validate_input
from deskloop.settings import ServerSettings

from .helpers import running_server

pytestmark = pytest.mark.slow

GREEDY = {"temperature": 0}  # this SDK version takes sampling parameters only as extra body
# The click: one id, an enum of two, no additionalProperties.
CLICK = {
    "name": "click",
    "description": "Click an element by its id.",
    "input_schema": {
        "type": "object",
        "properties": {"id": {"type": "string", "enum": ["e1", "e2"], "x-grounded": True}},
        "required": ["id"],
    },
}
TYPE_TEXT = {
    "name": "type_text",
    "description": "Type text into the focused element.",
    "input_schema": {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
}
TOOLS = [CLICK, TYPE_TEXT]  # the same tools every time: MLX prefills the prompt once
SCREEN = [
    {
        "role": "user",
        "content": 'Screen:\ne1 btn "Cancel"\ne2 btn "OK"\nWrite a long poem, then click OK.',
    }
]


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("llamacpp", marks=pytest.mark.llamacpp),
        pytest.param("mlx", marks=pytest.mark.mlx),
    ],
)
def client(request: pytest.FixtureRequest) -> Iterator[anthropic.Anthropic]:
    pytest.importorskip("llama_cpp" if request.param == "llamacpp" else "mlx.core")
    engine = create_engine(request.param, "", context_window=2048)
    assert isinstance(engine, LocalEngine)
    service = LocalModelService(engine, context_window=2048, queue_size=4)
    with running_server(create_app(service, ServerSettings(), request.param)) as url:
        yield anthropic.Anthropic(base_url=url, api_key="unused")
    service.close()


def ask(client: anthropic.Anthropic, *, stream: bool, **fields: Any) -> anthropic.types.Message:
    body: dict[str, Any] = {
        "model": "claude-opus-5-5",
        "messages": SCREEN,
        "tools": TOOLS,
        "extra_body": GREEDY,
        **fields,
    }
    if not stream:
        return client.messages.create(**body)
    with client.messages.stream(**body) as answer:
        return answer.get_final_message()


def the_call(message: anthropic.types.Message) -> tuple[str, dict[str, Any]]:
    assert message.stop_reason == "tool_use", message
    calls = [block for block in message.content if block.type == "tool_use"]
    assert len(calls) == 1, message
    tool = next(Tool.model_validate(spec) for spec in TOOLS if spec["name"] == calls[0].name)
    arguments = calls[0].input
    assert isinstance(arguments, dict)
    assert validate_input(tool, arguments) is None, arguments
    return calls[0].name, arguments


@pytest.mark.parametrize("max_tokens", [20, 40])
def test_a_forced_call_arrives_closed_and_valid_with_few_tokens(
    client: anthropic.Anthropic, max_tokens: int
) -> None:
    """The model would go on writing its poem; the call is closed instead (on MLX the
    same request with max_tokens 40 once answered with no call at all)."""
    choice = {"type": "tool", "name": "type_text"}
    whole = the_call(ask(client, stream=False, max_tokens=max_tokens, tool_choice=choice))
    streamed = the_call(ask(client, stream=True, max_tokens=max_tokens, tool_choice=choice))
    assert whole == streamed
    assert whole[0] == "type_text"


def test_a_forced_click_holds_only_its_declared_property(client: anthropic.Anthropic) -> None:
    message = ask(client, stream=False, max_tokens=200, tool_choice={"type": "any"})
    name, arguments = the_call(message)
    if name == "click":
        assert list(arguments) == ["id"] and arguments["id"] in ("e1", "e2")
    else:
        assert list(arguments) == ["text"]
    forced_click = ask(
        client, stream=False, max_tokens=200, tool_choice={"type": "tool", "name": "click"}
    )
    assert the_call(forced_click)[1] in ({"id": "e1"}, {"id": "e2"})
