"""No request, however malformed, gets a 500, a traceback or an HTML page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import client_for, request_body, scripted_app

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
block_types = st.sampled_from(
    ["text", "image", "tool_use", "tool_result", "thinking", "document", "bogus"]
)
blocks = st.fixed_dictionaries(
    {"type": block_types},
    optional={
        "text": json_values,
        "id": json_values,
        "input": json_values,
        "content": json_values,
        "tool_use_id": json_values,
        "source": json_values,
    },
)
messages = st.lists(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "assistant", "system", "tool", ""]),
            "content": st.text(max_size=10) | st.lists(blocks, max_size=3) | json_values,
        }
    ),
    max_size=4,
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["scripted", "claude-x", "gpt-4", ""]) | json_values,
        "max_tokens": st.integers(-5, 10) | json_values,
        "messages": messages | json_values,
        "system": st.text(max_size=10) | st.lists(blocks, max_size=2) | json_values,
        "stream": st.booleans() | json_values,
        "tools": st.lists(
            st.fixed_dictionaries(
                {"name": st.text(max_size=8)}, optional={"input_schema": json_values}
            ),
            max_size=2,
        )
        | json_values,
        "tool_choice": st.fixed_dictionaries(
            {"type": st.sampled_from(["auto", "any", "tool", "none", "x"])},
            optional={"name": st.text(max_size=5)},
        )
        | json_values,
        "temperature": json_values,
        "top_k": json_values,
        "stop_sequences": json_values,
    },
)


def assert_clean_answer(status: int, text: str) -> None:
    assert status != 500, text
    assert "Traceback" not in text
    assert "<html" not in text.lower()
    if status >= 400:
        body = json.loads(text)
        assert body["type"] == "error"
        assert body["request_id"].startswith("req_")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
async def test_random_bodies_get_a_clean_answer(body: dict[str, Any]) -> None:
    app, _ = scripted_app(["ok"] * 2)
    async with client_for(app) as client:
        response = await client.post("/v1/messages", json=body)
    assert_clean_answer(response.status_code, response.text)


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfe\x00", b'{"a": ' * 200, b"null", b"1e999999", b'"just a string"', b"{}" * 3],
)
async def test_broken_bytes_get_a_clean_400(raw: bytes) -> None:
    app, _ = scripted_app(["ok"])
    async with client_for(app) as client:
        response = await client.post("/v1/messages", content=raw)
    assert response.status_code == 400
    assert_clean_answer(response.status_code, response.text)


async def test_history_with_every_block_kind_reaches_the_model() -> None:
    app, service = scripted_app(["All done."])
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    history: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is on screen?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": png},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should look.", "signature": "abc"},
                {"type": "text", "text": "Looking."},
                {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": "observe",
                    "input": {"target": "focused"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_02",
                    "name": "click",
                    "input": {"element_id": "e9"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "content": [{"type": "text", "text": 'e9 btn "Save"'}],
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_02",
                    "content": "stale id: observe again",
                    "is_error": True,
                },
            ],
        },
    ]
    tools = [
        {
            "name": "observe",
            "description": "Read the screen.",
            "input_schema": {"type": "object", "properties": {"target": {"type": "string"}}},
        },
        {
            "name": "click",
            "description": "Click.",
            "input_schema": {
                "type": "object",
                "properties": {"element_id": {"type": "string"}},
                "required": ["element_id"],
            },
        },
    ]
    async with client_for(app) as client:
        response = await client.post(
            "/v1/messages", json=request_body(messages=history, tools=tools)
        )
    assert response.status_code == 200, response.text
    engine = service.engine
    prompt = bytes(t for t in engine.prompts[0] if t < 256).decode()  # type: ignore[attr-defined]
    assert 'e9 btn "Save"' in prompt
    assert "stale id: observe again" in prompt
    assert "image/png" in prompt
    assert '"element_id": "e9"' in prompt or "e9" in prompt.split("Looking.")[1]
    assert "I should look." not in prompt  # thinking is the model's own scratch, not replayed
    assert response.json()["content"] == [{"type": "text", "text": "All done."}]
