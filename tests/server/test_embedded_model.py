"""The embedded model behind a real socket, judged by the official SDK's stream accumulator."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest

from deskloop.engines import create_engine
from deskloop.engines.base import LocalEngine
from deskloop.server.app import create_app
from deskloop.server.local_service import LocalModelService
from deskloop.settings import ServerSettings

from .helpers import running_server

pytestmark = [pytest.mark.slow, pytest.mark.llamacpp]

QUESTION = [{"role": "user", "content": "Name three colours of the rainbow."}]
GREEDY = {"temperature": 0}  # this SDK version takes sampling parameters only as extra body


@pytest.fixture(scope="module")
def embedded_url() -> Iterator[str]:
    engine = create_engine("llamacpp", "", context_window=4096)
    assert isinstance(engine, LocalEngine)
    service = LocalModelService(engine, context_window=4096, queue_size=4)
    with running_server(create_app(service, ServerSettings(), "llamacpp")) as url:
        yield url
    service.close()


def test_streamed_answer_accumulates_to_the_non_streamed_one(embedded_url: str) -> None:
    client = anthropic.Anthropic(base_url=embedded_url, api_key="unused")
    whole = client.messages.create(
        model="claude-opus-5-5", max_tokens=30, messages=QUESTION, extra_body=GREEDY
    )
    with client.messages.stream(
        model="claude-opus-5-5", max_tokens=30, messages=QUESTION, extra_body=GREEDY
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert whole.model == final.model == "claude-opus-5-5"
    assert len(pieces) > 1, "the answer should arrive in several deltas"
    assert (
        [block.type for block in final.content]
        == [block.type for block in whole.content]
        == ["text"]
    )
    assert final.content[0].text == whole.content[0].text == "".join(pieces)  # type: ignore[union-attr]
    assert whole.content[0].text.strip()  # type: ignore[union-attr]
    assert final.stop_reason == whole.stop_reason
    assert final.usage.output_tokens == whole.usage.output_tokens
    # Same prompt twice: the second prefill reuses the first one's cache.
    cached = final.usage.cache_read_input_tokens or 0
    assert cached > 0
    assert final.usage.input_tokens + cached == whole.usage.input_tokens + (
        whole.usage.cache_read_input_tokens or 0
    )


def test_count_tokens_matches_what_inference_reports(embedded_url: str) -> None:
    client = anthropic.Anthropic(base_url=embedded_url, api_key="unused")
    counted = client.messages.count_tokens(
        model="claude-opus-5-5", messages=QUESTION, system="Be brief."
    )
    answer = client.messages.create(
        model="claude-opus-5-5",
        max_tokens=5,
        messages=QUESTION,
        system="Be brief.",
        extra_body=GREEDY,
    )
    assert counted.input_tokens == answer.usage.input_tokens + (
        answer.usage.cache_read_input_tokens or 0
    )


CLICK = {
    "name": "click",
    "description": "Click an element by its id.",
    "input_schema": {
        "type": "object",
        "properties": {"element_id": {"type": "string", "pattern": "^e[0-9]+$"}},
        "required": ["element_id"],
        "additionalProperties": False,
    },
}
SCREEN = [
    {"role": "user", "content": 'Screen:\ne1 btn "Cancel"\ne2 btn "OK"\nClick the OK button.'}
]


def test_forced_call_streams_its_input_in_pieces_and_validates(embedded_url: str) -> None:
    client = anthropic.Anthropic(base_url=embedded_url, api_key="unused")
    with client.messages.stream(
        model="claude-opus-5-5",
        max_tokens=60,
        messages=SCREEN,
        tools=[CLICK],
        tool_choice={"type": "any"},
        extra_body=GREEDY,
    ) as stream:
        pieces = [
            e.delta.partial_json
            for e in stream
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        ]  # type: ignore[union-attr]
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    calls = [block for block in final.content if block.type == "tool_use"]
    assert len(calls) == 1 and calls[0].name == "click"
    assert len(pieces) > 2, "input should stream as the tokens arrive, not as one blob"
    element = calls[0].input["element_id"]  # type: ignore[index]
    assert element in ("e1", "e2")


def test_a_forced_call_arrives_even_when_max_tokens_cannot_hold_it(embedded_url: str) -> None:
    """tool_choice any must answer with a call (issue 17): the shortest whole call wins over
    max_tokens 4, where it used to be cut and dropped."""
    client = anthropic.Anthropic(base_url=embedded_url, api_key="unused")
    message = client.messages.create(
        model="claude-opus-5-5",
        max_tokens=4,
        messages=SCREEN,
        tools=[CLICK],
        tool_choice={"type": "any"},
        extra_body=GREEDY,
    )
    assert message.stop_reason == "tool_use"
    [call] = [block for block in message.content if block.type == "tool_use"]
    assert call.name == "click" and call.input["element_id"] in ("e1", "e2")  # type: ignore[index]
    assert message.usage.output_tokens > 4


def grounded_click(first: int, last: int) -> dict[str, object]:
    """CLICK as a grounding client sends it: the id is one of this turn's observation ids."""
    ids = [f"e{n}" for n in range(first, last + 1)]
    element = {"type": "string", "enum": ids, "description": "An element id on screen."}
    return {**CLICK, "input_schema": {**CLICK["input_schema"], "properties": {"element_id": element}}}  # type: ignore[dict-item]


def test_a_long_enum_is_enforced_but_the_prompt_stays_the_same(embedded_url: str) -> None:
    client = anthropic.Anthropic(base_url=embedded_url, api_key="unused")
    # The user names an id outside the enum: the grammar must still keep the call on screen.
    asked = [{"role": "user", "content": 'Screen:\ne40 btn "OK"\ne41 btn "Cancel"\nClick e7.'}]
    emitted = []
    counts = []
    for first, last in ((40, 60), (41, 75)):
        tool = grounded_click(first, last)
        counts.append(
            client.messages.count_tokens(
                model="claude-opus-5-5", messages=asked, tools=[tool]  # type: ignore[list-item]
            ).input_tokens
        )
        message = client.messages.create(
            model="claude-opus-5-5",
            max_tokens=40,
            messages=asked,  # type: ignore[arg-type]
            tools=[tool],  # type: ignore[list-item]
            tool_choice={"type": "any"},
            extra_body=GREEDY,
        )
        [call] = [block for block in message.content if block.type == "tool_use"]
        element = call.input["element_id"]  # type: ignore[index]
        assert element in tool["input_schema"]["properties"]["element_id"]["enum"]  # type: ignore[index]
        emitted.append(element)
        last_usage = message.usage
    assert counts[0] == counts[1], "the rendered prompt changed with the enum's values"
    # The second turn reuses the whole prompt from the first one's cache.
    assert (last_usage.cache_read_input_tokens or 0) >= counts[1] - 1
