"""The web UI in a real Chromium (Debian's, headless) against a real `deskloop ui` process.

Sessions talk to a real `deskloop serve` on the scripted engine (a test fake, chosen in
Settings as the Custom API Endpoint) and a real MCP server. Each page's screenshot is kept
in test-output/ui/ for a reviewer.
"""

from __future__ import annotations

import http.server
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.agent.scripted_server import scripted_server, tool_call
from tests.ui.helpers import ui_process

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).parents[2] / "test-output" / "ui"
TIME_TOOL = "mcp__time__get_current_time"  # annotated read-only: runs without asking
# The fixture server's tools carry no annotations, so the policy treats them as external: ask.
ECHO_TOOL = "mcp__fixture__echo"
FIXTURE_SERVER = Path(__file__).parents[1] / "mcp" / "mcp_fixture_server.py"
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(autouse=True)
def room_for_every_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scripted server's window holds the prompt with every native and MCP tool (~8k)."""
    monkeypatch.setenv("DESKLOOP_SERVER_CONTEXT_WINDOW", "32768")


@pytest.fixture(scope="module")
def ui_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui-home")


@pytest.fixture(scope="module")
def ui_url(ui_home: Path) -> Iterator[str]:
    with ui_process(ui_home) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        if sys.platform.startswith("linux"):  # scripts/debian-packages.txt installs it
            pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
        pytest.skip(f"these tests drive Debian's {CHROMIUM}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-sync",
                  "--no-first-run", "--disable-component-update"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, ui_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=ui_url, viewport={"width": 1100, "height": 860})
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture(scope="module", autouse=True)
def shots() -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)


def screenshot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def settings(page: Page, *, endpoint: str, external: str = "ask") -> None:
    """Choose the Custom API Endpoint and the external tools' policy on the Settings page."""
    page.goto("/settings")
    expect(page.locator("#next-session")).not_to_be_empty()  # the saved values are in
    page.get_by_label("Custom API Endpoint URL").fill(endpoint)
    page.get_by_label("External (send, post, third-party)").select_option(external)
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#message")).to_contain_text("Saved")


def start_chat(page: Page, task: str) -> None:
    page.goto("/chat")
    page.get_by_label("Task").fill(task)
    page.get_by_role("button", name="Start a session").click()
    try:
        page.wait_for_url("**/chat/*")
    except PlaywrightTimeout:
        raise AssertionError(f"no session page: {page.locator('#message').inner_text()}") from None


def add_mcp_servers(page: Page) -> None:
    """The time server and the fixture server, added on the MCP servers page."""
    page.goto("/mcp")
    for name, command in (
        ("time", f"{sys.executable} -m mcp_server_time"),
        ("fixture", f"{sys.executable} {FIXTURE_SERVER}"),
    ):
        if page.locator(f'tr[data-server="{name}"]').count():
            continue
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_label("Command (stdio)").fill(command)
        page.get_by_role("button", name="Add server").click()
        expect(page.locator(f'tr[data-server="{name}"]')).to_contain_text("on")


def test_the_endpoint_set_in_settings_answers_the_next_session(
    page: Page, tmp_path: Path, ui_home: Path
) -> None:
    with scripted_server(tmp_path, ["Hello from the custom endpoint."]) as url:
        page.goto("/settings")
        expect(page.locator("#next-session")).not_to_be_empty()
        expect(page.locator("#source-embedded")).to_be_checked()
        expect(page.locator("#applies")).to_contain_text("apply to the next session")
        page.get_by_label("Custom API Endpoint URL").fill(url)
        expect(page.locator("#source-custom")).to_be_checked()
        page.get_by_label("Speak answers aloud").check()
        page.get_by_role("button", name="Save settings").click()
        expect(page.locator("#message")).to_contain_text(f"The next session talks to {url}")
        screenshot(page, "settings")
        saved = (ui_home / "config" / "config.toml").read_text()
        assert f'endpoint = "{url}"' in saved and "[voice]\nenabled = true" in saved

        start_chat(page, "Say hello")
        expect(page.locator(".msg.user")).to_have_text("Say hello")
        expect(page.locator(".msg.assistant")).to_have_text("Hello from the custom endpoint.")
        expect(page.locator("#session-meta")).to_contain_text(f"at {url}")
        expect(page.locator("#send")).to_be_enabled()


# Before any MCP server is added, so the routine's own session starts quickly.
def test_a_routine_is_created_edited_and_run_now(page: Page, tmp_path: Path) -> None:
    with scripted_server(tmp_path, ["Three new mails, none urgent."], repeat_last=True) as url:
        settings(page, endpoint=url)
        page.goto("/routines")
        page.get_by_label("Name", exact=True).fill("mail")
        page.get_by_label("Task").fill("Summarise my unread mail")
        page.get_by_label("Schedule").fill("cron:0 9 * * 1-5")
        page.get_by_role("button", name="Create routine").click()
        row = page.locator('tr[data-routine="mail"]')
        expect(row).to_contain_text("cron:0 9 * * 1-5")

        row.get_by_role("button", name="Edit").click()
        expect(page.get_by_label("Task")).to_have_value("Summarise my unread mail")
        page.get_by_label("Schedule").fill("every:3600")
        page.get_by_role("button", name="Save changes").click()
        expect(row).to_contain_text("every:3600")

        row.get_by_role("button", name="Run now").click()
        run = page.locator("#runs tr[data-status]").first
        expect(run).to_have_attribute("data-status", "ok", timeout=90_000)
        expect(run).to_contain_text("Three new mails, none urgent.")
        screenshot(page, "routines")


def test_a_chat_shows_each_tool_call_and_its_result(page: Page, tmp_path: Path) -> None:
    add_mcp_servers(page)
    screenshot(page, "mcp")
    outputs = [
        tool_call(TIME_TOOL, {"timezone": "Europe/Paris"}, "Checking the clock."),
        "It is lunchtime in Paris.",
    ]
    with scripted_server(tmp_path, outputs) as url:
        settings(page, endpoint=url)
        start_chat(page, "What time is it in Paris?")
        call = page.locator(f'.tool[data-tool="{TIME_TOOL}"]')
        expect(call).to_have_attribute("data-status", "ok")
        expect(call.locator(".args")).to_contain_text("Europe/Paris")
        expect(page.locator(".msg.assistant").last).to_have_text("It is lunchtime in Paris.")
        call.locator("summary", has_text="result").click()
        expect(call.locator("details").last).to_contain_text('"day_of_week"')
        screenshot(page, "chat-tool-call")


def test_ask_followup_is_answered_with_its_buttons(page: Page, tmp_path: Path) -> None:
    outputs = [
        tool_call("ask_followup", {"question": "Which file?", "options": ["notes.txt", "todo.txt"]}),
        "Saved as todo.txt.",
    ]
    with scripted_server(tmp_path, outputs) as url:
        settings(page, endpoint=url)
        start_chat(page, "Save the file")
        question = page.locator(".question")
        expect(question).to_contain_text("Which file?")
        screenshot(page, "chat-question")
        question.get_by_role("button", name="todo.txt").click()
        expect(page.locator(".msg.user").last).to_have_text("todo.txt")
        expect(page.locator(".msg.assistant").last).to_have_text("Saved as todo.txt.")
        expect(question.get_by_role("button", name="notes.txt")).to_be_disabled()


def test_a_held_call_runs_once_approved(page: Page, tmp_path: Path) -> None:
    add_mcp_servers(page)
    outputs = [tool_call(ECHO_TOOL, {"text": "hello"}), "The echo came back."]
    with scripted_server(tmp_path, outputs) as url:
        settings(page, endpoint=url, external="ask")
        start_chat(page, "Echo hello")
        held = page.locator(".ask[data-approval]")
        expect(held).to_contain_text(f"The agent wants to run {ECHO_TOOL}")
        expect(page.locator("#stop")).to_be_enabled()
        screenshot(page, "chat-approval")
        held.get_by_role("button", name="Allow once").click()
        expect(held).to_contain_text("Allowed once")
        echo = page.locator(f'.tool[data-tool="{ECHO_TOOL}"]')
        expect(echo).to_have_attribute("data-status", "ok")
        expect(page.locator(".msg.assistant").last).to_have_text("The echo came back.")


def test_two_sessions_at_once_in_two_tabs(page: Page, tmp_path: Path) -> None:
    add_mcp_servers(page)
    outputs = [
        tool_call(ECHO_TOOL, {"text": "alpha"}, "Alpha asks first."),
        "Beta is done.",
        "Alpha is done.",
    ]
    with scripted_server(tmp_path, outputs) as url:
        settings(page, endpoint=url, external="ask")
        start_chat(page, "alpha task")
        expect(page.locator(".ask[data-approval]")).to_be_visible()
        other = page.context.new_page()
        start_chat(other, "beta task")
        expect(other.locator(".msg.assistant")).to_have_text("Beta is done.")

        page.locator(".ask[data-approval]").get_by_role("button", name="Allow once").click()
        expect(page.locator(".msg.assistant").last).to_have_text("Alpha is done.")
        assert page.url != other.url
        # Neither tab shows anything of the other session.
        assert "Beta" not in page.locator("#transcript").inner_text()
        assert "beta task" not in page.locator("#transcript").inner_text()
        assert "Alpha" not in other.locator("#transcript").inner_text()
        assert other.locator(".ask, .tool").count() == 0
        screenshot(other, "chat-second-tab")

        other.goto("/chat")
        for task in ("alpha task", "beta task"):
            expect(other.locator("#live li", has_text=task)).to_have_count(1)
        screenshot(other, "chat-start")


def test_history_finds_a_session_and_opens_it(page: Page, tmp_path: Path) -> None:
    with scripted_server(tmp_path, ["The March invoice is in Documents."]) as url:
        settings(page, endpoint=url)
        start_chat(page, "Where did I save the invoice?")
        expect(page.locator(".msg.assistant")).to_have_text("The March invoice is in Documents.")
    page.goto("/history")
    expect(page.locator("#results li").first).to_be_visible()
    page.get_by_label("Search every message").fill("march invoice")
    page.get_by_role("button", name="Search").click()
    result = page.locator("#results li")
    expect(result).to_have_count(1)
    expect(result.locator("mark").first).to_be_visible()
    screenshot(page, "history")
    result.get_by_role("link").click()
    page.wait_for_url("**/chat/*")
    expect(page.locator(".msg.user").first).to_have_text("Where did I save the invoice?")
    expect(page.locator(".msg.assistant")).to_have_text("The March invoice is in Documents.")


def test_doctor_lists_checks_with_fixes(page: Page) -> None:
    page.goto("/doctor")
    display = page.locator('#checks tr[data-check="display"]')
    expect(display).to_contain_text("Fix:")
    expect(page.locator("#verdict")).to_contain_text("Can act on it: no")
    screenshot(page, "doctor")


EVIL_FORM = """<!doctype html><html><body>
<form id="f" method="post" action="{target}/api/settings">
<input name="model_source" value="custom"><input name="custom_url" value="http://evil.example:1">
</form>
<script>
fetch("{target}/api/chat", {{method: "POST", mode: "no-cors",
  headers: {{"Content-Type": "text/plain"}}, body: JSON.stringify({{text: "rm -rf ~"}})}})
  .finally(() => document.getElementById("f").submit());
</script></body></html>"""


@pytest.fixture
def evil_site(ui_url: str) -> Iterator[str]:
    """A page on another origin (localhost, another port) that posts to the UI."""
    body = EVIL_FORM.format(target=ui_url).encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Evil)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_cross_origin_form_post_is_refused(page: Page, ui_url: str, evil_site: str) -> None:
    before = httpx.get(f"{ui_url}/api/settings").json()
    sessions_before = httpx.get(f"{ui_url}/api/history").json()["sessions"]
    with page.expect_navigation(url=f"{ui_url}/api/settings") as landed:
        page.goto(evil_site)
    response = landed.value
    assert response is not None and response.status == 403
    assert "refused a request sent from another site" in page.content()
    after = httpx.get(f"{ui_url}/api/settings").json()
    assert after["custom_url"] == before["custom_url"] != "http://evil.example:1"
    assert httpx.get(f"{ui_url}/api/history").json()["sessions"] == sessions_before
