"""Many clients at once on the embedded model: queueing, 429 past the bound, no cross-talk, a storm."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .serving import Served, assert_well_formed_stream, served, sse_events
from .storm import run_storm, summary

pytestmark = [pytest.mark.slow, pytest.mark.llamacpp]

QUEUE_SIZE = 16  # the default of server.queue_size
FRUITS = [
    "Apples", "Bananas", "Cherries", "Dates", "Figs", "Grapes", "Kiwis", "Lemons",
    "Mangoes", "Nectarines", "Oranges", "Pears", "Plums", "Quinces", "Raspberries",
    "Strawberries",
]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("serve"), "--context-window", "4096") as running:
        yield running


def question(fruit: str, **fields: Any) -> dict[str, Any]:
    # Distinct first words: every prompt shares exactly the chat template's prefix with
    # any other, so each one is evaluated the same way whatever ran before it.
    body: dict[str, Any] = {
        "model": "claude-opus-5-5",
        "max_tokens": 6,
        "temperature": 0,
        "stream": True,
        "messages": [{"role": "user", "content": f"{fruit} are my favourite. Why?"}],
    }
    body.update(fields)
    return body


async def streamed_text(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    async with client.stream("POST", "/v1/messages", json=body) as response:
        assert response.status_code == 200, await response.aread()
        lines = [line async for line in response.aiter_lines()]
    message = assert_well_formed_stream(sse_events(lines))
    assert message["stop_reason"] in {"max_tokens", "end_turn"}
    return "".join(block["text"] for block in message["content"])


async def test_sixteen_queued_streams_get_their_own_answers_and_the_next_gets_429(
    server: Served,
) -> None:
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=server.url, timeout=300, limits=limits) as client:
        alone = {fruit: await streamed_text(client, question(fruit)) for fruit in FRUITS}
        assert len(set(alone.values())) > 1, "every answer the same: the test would prove nothing"
        # A long story holds the engine while sixteen clients queue behind it.
        story = question("Stories", max_tokens=400, messages=[
            {"role": "user", "content": "Write a very long story."}
        ])  # fmt: skip
        async with client.stream("POST", "/v1/messages", json=story) as running:
            assert running.status_code == 200
            lines = running.aiter_lines()
            await anext(lines)
            queued = [asyncio.create_task(streamed_text(client, question(f))) for f in FRUITS]
            while server.health()["waiting"] < QUEUE_SIZE:
                await asyncio.sleep(0.05)
            refused = await client.post("/v1/messages", json=question("Walnuts"))
            assert refused.status_code == 429
            assert refused.json()["error"]["type"] == "rate_limit_error"
        # The story was closed early; the queue drains in order.
        together = dict(zip(FRUITS, await asyncio.gather(*queued), strict=True))
    assert together == alone, "an answer changed when it was queued with others"
    assert server.wait_until_idle()["waiting"] == 0


def test_a_storm_of_clients_leaves_the_server_well_and_idle(server: Served) -> None:
    report = asyncio.run(run_storm(server.url, clients=8, requests=200, seed=8, max_tokens=6))
    server.assert_alive(f"after the storm: {summary(report)}")
    assert report.failures == [], summary(report) + "\n" + "\n".join(report.failures[:10])
    assert report.sent >= 200 and report.refused == 0
    # The storm did what it says: completed answers, early closes and client timeouts.
    assert report.completed >= 80 and report.closed_early >= 40 and report.timed_out >= 5, summary(
        report
    )
    state = server.wait_until_idle(timeout_s=60)
    assert state == {**state, "busy": False, "waiting": 0}
    # Real work after the storm: a whole streamed answer.
    with (
        httpx.Client(base_url=server.url, timeout=120) as client,
        client.stream("POST", "/v1/messages", json=question("Peaches")) as response,
    ):
        message = assert_well_formed_stream(sse_events(list(response.iter_lines())))
    assert message["usage"]["output_tokens"] >= 1
