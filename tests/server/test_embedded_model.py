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
    engine.close()


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
