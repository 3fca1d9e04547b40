"""What a person sees of a session in a real Chromium: its end in words, a message after a limit
running again, the live status, folded long messages, and search with roles, one row a session.

A real `deskloop ui` with agent.max_turns = 2, talking to a real `deskloop serve` on the
scripted engine and the real MCP time server. Screenshots go to test-output/ui/.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.agent.scripted_server import scripted_server, tool_call
from tests.ui import test_browser
from tests.ui.helpers import ui_process

# The browser tests' fixtures and helpers, shared.
browser = test_browser.browser
page = test_browser.page
room_for_every_tool = test_browser.room_for_every_tool
shots = test_browser.shots
screenshot = test_browser.screenshot
start_chat = test_browser.start_chat
pytestmark = pytest.mark.slow
TIME_TOOL = "mcp__time__get_current_time"
OUTPUTS = [
    tool_call(TIME_TOOL, {"timezone": "Europe/Paris"}),
    tool_call(TIME_TOOL, {"timezone": "Asia/Tokyo"}),
    "Finished, as you asked.",
    "Read it all.",
]


@pytest.fixture(scope="module")
def ui_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("truth-home")
    servers = {"time": {"command": sys.executable, "args": ["-m", "mcp_server_time"]}}
    config = home / "config"
    config.mkdir()
    (config / "mcp-servers.json").write_text(json.dumps({"mcpServers": servers}))
    model = tmp_path_factory.mktemp("truth-model")
    # The first answer waits 3 s, so the page's status is seen while the model is asked.
    with (
        scripted_server(model, OUTPUTS, prefill_delay_s=1.5) as url,
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("DESKLOOP_AGENT_MAX_TURNS", "2")
        env.setenv("DESKLOOP_AGENT_ENDPOINT", url)
        with ui_process(home) as ui:
            yield ui


def test_a_limit_is_said_and_the_next_message_runs_again(page: Page) -> None:
    start_chat(page, "Tell me the time in Paris and Tokyo")
    expect(page.locator("#state-text")).to_contain_text("waiting for the model")
    expect(page.locator("#state-text")).to_contain_text("prompt tokens")
    expect(page.locator("#transcript")).to_contain_text(
        "stopped at a limit: reached 2 turns (agent.max_turns)"
    )
    expect(page.locator("#transcript")).to_contain_text("Your next message goes on")
    expect(page.locator("#session-ended")).to_have_text(
        "Last run: stopped at a limit: reached 2 turns (agent.max_turns)"
    )
    screenshot(page, "chat-stopped-at-limit")
    page.get_by_label("Message").fill("Please finish now.")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".msg.assistant").last).to_have_text("Finished, as you asked.")
    expect(page.locator("#session-ended")).to_have_text("Last run: finished")
    expect(page.locator("#state-text")).to_have_text("waiting for you")

    page.goto("/history")
    first = page.locator("#results li").first
    expect(first).to_contain_text("finished")
    expect(first).to_contain_text("Tell me the time in Paris and Tokyo")
    page.get_by_label("Search every message").fill("Tokyo")
    page.get_by_role("button", name="Search").click()
    result = page.locator("#results li")
    expect(result).to_have_count(1)  # one row for the session, however many messages match
    expect(result).to_contain_text("3 matching messages")
    expect(result.locator(".who")).to_have_text("you: ")
    page.get_by_label("Search every message").fill("Asia")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results li .who")).to_have_text(f"agent → {TIME_TOOL}: ")
    screenshot(page, "history-search-roles")


def test_a_long_task_shows_folded(page: Page) -> None:
    task = "Read this note and tell me when you are done.\n" + "\n".join(
        f"line {n}: the quick brown fox jumps over the lazy dog" for n in range(60)
    )
    start_chat(page, task)
    expect(page.locator(".msg.assistant")).to_have_text("Read it all.")
    message = page.locator(".msg.user.folded")
    expect(message.locator("summary")).to_have_text(f"Show all {len(task):,} characters")
    assert message.bounding_box()["height"] < 500  # type: ignore[index]
    screenshot(page, "chat-long-message-folded")
    assert os.path.exists(
        Path(__file__).parents[2] / "test-output" / "ui" / "chat-long-message-folded.png"
    )
