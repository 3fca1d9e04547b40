"""Settings, MCP and Routines speak the page, in a real Chromium against a real `deskloop ui`.

Issue 18: the cloud without a key says it will fail; the model shown is what the choice
serves; refusals name the fields' labels; only changed settings are written; the MCP page
has Replace and Edit; routine times are local and readable, and refresh after a run.
Screenshots go to test-output/ui/ for a reviewer.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Request, expect, sync_playwright

from tests.agent.scripted_server import scripted_server
from tests.ui.helpers import ui_process

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).parents[2] / "test-output" / "ui"
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def ui_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui-words-home")


@pytest.fixture(scope="module")
def ui_url(ui_home: Path) -> Iterator[str]:
    with ui_process(ui_home) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"these tests drive Debian's {CHROMIUM}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--no-first-run"],
        )  # fmt: skip
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, ui_url: str) -> Iterator[Page]:
    context = browser.new_context(
        base_url=ui_url, viewport={"width": 1100, "height": 860}, timezone_id="UTC"
    )
    context.set_default_timeout(WAIT_MS)
    yield context.new_page()
    context.close()


def screenshot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def saved(home: Path) -> dict[str, object]:
    path = home / "config" / "config.toml"
    return tomllib.loads(path.read_text()) if path.exists() else {}


def test_settings_say_what_the_choice_serves_and_write_only_changes(
    page: Page, ui_home: Path
) -> None:
    page.goto("/settings")
    expect(page.locator("#next-session")).to_contain_text("smollm2-135m-instruct")
    model = page.get_by_label("Model name")
    expect(model).to_be_disabled()
    expect(model).to_have_value("smollm2-135m-instruct")
    expect(page.locator("#model-hint")).to_contain_text("The embedded model on this machine")

    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#message")).to_contain_text("Saved. Nothing had changed.")
    assert saved(ui_home) == {}  # defaults stay defaults

    page.locator('.choice[data-source="cloud"]').click()
    expect(model).to_be_enabled()
    expect(model).to_have_value("claude-deskloop-test")  # DESKLOOP_AGENT_MODEL, set by ui_process
    expect(page.locator("#key-hint")).to_be_visible()
    expect(page.locator("#key-hint")).to_contain_text("sessions with the cloud will fail")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#message")).to_have_class("banner warn")
    expect(page.locator("#message")).to_contain_text("Saved: Which model answers.")
    expect(page.locator("#message")).to_contain_text("needs an API key")
    screenshot(page, "settings-cloud-without-key")
    assert saved(ui_home) == {"agent": {"endpoint": "https://api.anthropic.com"}}

    model.fill("")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#message")).to_contain_text("Model name must not be empty")
    model.fill("claude-deskloop-test")
    page.get_by_label("Internal tools (s)").fill("-1")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#message")).to_have_text(
        "Internal tools (s) must be a number above 0, not -1"
    )
    screenshot(page, "settings-label-in-error")
    page.get_by_label("Internal tools (s)").fill("10")

    page.locator('.choice[data-source="embedded"]').click()
    expect(model).to_have_value("smollm2-135m-instruct")
    page.get_by_label("MCP tools (s)").fill("60")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#message")).to_contain_text("Saved: Which model answers, MCP tools (s).")
    assert saved(ui_home) == {"agent": {"timeout_mcp_s": 60.0}}
    screenshot(page, "settings-embedded")


def test_mcp_servers_are_replaced_with_the_box_and_edited_with_a_button(page: Page) -> None:
    page.goto("/mcp")
    page.get_by_label("Name", exact=True).fill("clock")
    page.get_by_label("Command (stdio)").fill("true")
    page.get_by_label("Environment or headers").fill("TZ=UTC")
    page.get_by_role("button", name="Add server").click()
    row = page.locator('tr[data-server="clock"]')
    expect(row).to_contain_text("true")

    page.get_by_label("Name", exact=True).fill("clock")
    page.get_by_label("Command (stdio)").fill(f"{sys.executable} -V")
    page.get_by_label("Environment or headers").fill("TZ=UTC")
    page.get_by_role("button", name="Add server").click()
    expect(page.locator("#message")).to_contain_text("tick Replace to replace it")
    page.get_by_label("Replace one already listed").check()
    page.get_by_role("button", name="Add server").click()
    expect(row).to_contain_text(f"{sys.executable} -V")

    row.get_by_role("button", name="Edit").click()
    expect(page.locator("#form-title")).to_have_text("Edit clock")
    expect(page.get_by_label("Command (stdio)")).to_have_value(f"{sys.executable} -V")
    expect(page.get_by_label("Environment or headers")).to_have_value("TZ=UTC\n")
    screenshot(page, "mcp-edit")
    page.get_by_label("Command (stdio)").fill("no-such-server-here")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#message")).to_contain_text("type its full path in Command")
    page.get_by_label("Command (stdio)").fill("true --changed")
    page.get_by_role("button", name="Save changes").click()
    expect(row).to_contain_text("true --changed")
    expect(page.locator("#form-title")).to_have_text("Add a server")
    screenshot(page, "mcp")


def test_routine_times_are_local_words_and_refresh_after_a_run(
    page: Page, tmp_path: Path
) -> None:
    expected = "today 08:00" if datetime.now(UTC).hour < 8 else "tomorrow 08:00"
    with scripted_server(tmp_path, ["All quiet."], repeat_last=True) as url:
        page.goto("/routines")
        page.get_by_label("Name", exact=True).fill("morning")
        page.get_by_label("Task").fill("Say what is new")
        page.get_by_label("Schedule").fill("cron:0 8 * * *")
        page.get_by_label("Time zone").fill("UTC")
        page.get_by_label("Endpoint").fill(url)
        page.get_by_role("button", name="Create routine").click()
        next_fire = page.locator('tr[data-routine="morning"] .next-fire')
        expect(next_fire).to_have_text(f"next: {expected}")

        row = page.locator('tr[data-routine="morning"]')
        run = page.locator("#runs tr[data-status]").first

        def list_read(request: Request) -> bool:
            return request.method == "GET" and request.url.endswith("/api/routines")

        # every: counts from a run's end, so the list is read again once the run has ended.
        with page.expect_request(list_read, timeout=90_000):
            row.get_by_role("button", name="Run now").click()
            expect(run).to_have_attribute("data-status", "ok", timeout=90_000)
        expect(run).to_contain_text("today ")
        expect(next_fire).to_have_text(f"next: {expected}")
        screenshot(page, "routines-times")
