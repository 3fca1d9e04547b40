"""Small models on real engines: sized by their server, their typed text held to the task,
and the tool-trained Qwen2.5-Coder-0.5B calling a tool on its first turn with the defaults."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from deskloop.agent.endpoint import EmbeddedServer
from deskloop.agent.model_size import judge_model_size
from deskloop.agent.session import SessionOptions, open_session
from deskloop.agent.steps import Notice, RunEnded, ToolCallStarted, TurnStarted
from deskloop.agent.task_plan import TaskPlan
from deskloop.mcp.config import servers_file
from deskloop.tools.screen import screen_tools

pytestmark = [pytest.mark.slow, pytest.mark.llamacpp]

QWEN_SCRIPT = Path(__file__).resolve().parents[3] / "shared" / "models" / "qwen2.5-coder-0.5b.sh"
GREEDY = {"temperature": 0}


def qwen_path() -> Path:
    if not QWEN_SCRIPT.is_file():
        pytest.skip(f"{QWEN_SCRIPT} is not here: the project's shared folder is missing")
    done = subprocess.run(["bash", str(QWEN_SCRIPT)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def embedded_url() -> Iterator[str]:
    with EmbeddedServer() as server:
        yield server.start()


@pytest.fixture(scope="module")
def qwen_url() -> Iterator[str]:
    with EmbeddedServer(["--model", str(qwen_path())]) as server:
        yield server.start()


def health(url: str) -> dict[str, object]:
    answer: dict[str, object] = httpx.get(url + "/health", timeout=10).json()
    return answer


def test_served_models_are_sized_by_their_server_and_the_cloud_is_not_small(
    embedded_url: str, qwen_url: str
) -> None:
    smol, qwen = health(embedded_url), health(qwen_url)
    assert smol["family"] == "llama" and 100e6 < int(str(smol["parameters"])) < 200e6
    assert qwen["family"] == "qwen2" and 400e6 < int(str(qwen["parameters"])) < 700e6
    assert judge_model_size("auto", str(qwen["model"]), qwen).small
    assert judge_model_size("auto", str(smol["model"]), smol).small
    assert not judge_model_size("auto", "claude-opus-5-5", None).small
    card = httpx.get(qwen_url + "/v1/models", timeout=10).json()["data"][0]
    assert card["parameters"] == qwen["parameters"]


def test_typed_text_outside_the_tasks_values_cannot_be_produced(embedded_url: str) -> None:
    type_text = next(t for t in screen_tools() if t.name == "type_text").definition()
    plan = TaskPlan.for_task("Type hello world into Mousepad.")
    [grounded] = plan.ground_values([type_text])
    client = anthropic.Anthropic(base_url=embedded_url, api_key="unused")
    # The message asks for other text: the grammar keeps the call to the task's values.
    asked = [{"role": "user", "content": "Type the word banana into e5 now."}]
    message = client.messages.create(
        model="claude-opus-5-5",
        max_tokens=60,
        messages=asked,  # type: ignore[arg-type]
        tools=[grounded],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "type_text"},
        extra_body=GREEDY,
    )
    [call] = [block for block in message.content if block.type == "tool_use"]
    assert call.input["text"] == "hello world"  # type: ignore[index]


async def test_qwen_behind_deskloop_serve_calls_a_tool_on_its_first_turn_with_the_defaults(
    qwen_url: str,
) -> None:
    servers_file().parent.mkdir(parents=True, exist_ok=True)
    time_server = {"command": sys.executable, "args": ["-m", "mcp_server_time"]}
    servers_file().write_text(json.dumps({"mcpServers": {"time": time_server}}))

    steps: list[object] = []
    async with open_session(SessionOptions(endpoint=qwen_url, screen=False)) as session:
        async for step in session.send("What time is it in Tokyo now?"):
            steps.append(step)
            if isinstance(step, ToolCallStarted | RunEnded):
                break
    said = [s.message for s in steps if isinstance(s, Notice)]
    assert any("is a small model" in line for line in said), said
    assert any(line.startswith("tools for this task:") and "mcp:time" in line for line in said)
    assert sum(isinstance(s, TurnStarted) for s in steps) == 1
    calls = [s for s in steps if isinstance(s, ToolCallStarted)]
    assert calls, f"the first turn made no tool call: {steps}"
    assert calls[0].call.name == "mcp__time__get_current_time"
