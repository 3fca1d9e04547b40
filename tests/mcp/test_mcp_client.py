"""MCP servers through the real SDK: a real third-party server, a hung tool, a crash, HTTP."""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deskloop.mcp.client import McpServers
from deskloop.mcp.config import HttpServerConfig, StdioServerConfig, load_servers, servers_file
from deskloop.settings import load_settings, paths
from deskloop.store import Store
from deskloop.tools import (
    Answer,
    Dispatcher,
    PermissionPolicy,
    PermissionRequest,
    ToolCall,
    ToolContext,
    ToolRegistry,
    timeouts_from_settings,
)

FIXTURE_SERVER = Path(__file__).with_name("mcp_fixture_server.py")
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def external_tools_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixture's tools carry no annotations, so they count as external: allow those."""
    monkeypatch.setenv("DESKLOOP_AGENT_POLICY_EXTERNAL", "auto")


class Collected:
    """Sinks for server stderr and reports, kept for the assertions."""

    def __init__(self) -> None:
        self.stderr: list[tuple[str, str]] = []
        self.reports: list[tuple[str, str]] = []

    def on_stderr(self, server: str, line: str) -> None:
        self.stderr.append((server, line))

    def on_report(self, server: str, message: str) -> None:
        self.reports.append((server, message))


def write_servers(servers: dict[str, object]) -> None:
    servers_file().parent.mkdir(parents=True, exist_ok=True)
    servers_file().write_text(json.dumps({"mcpServers": servers}))


def fixture_entry() -> dict[str, object]:
    return {"command": sys.executable, "args": [str(FIXTURE_SERVER)]}


async def allow_every_call(request: PermissionRequest) -> Answer:
    return Answer.ALLOW_ONCE


async def start_session(collected: Collected) -> tuple[McpServers, Dispatcher]:
    servers = McpServers(
        load_servers(), on_stderr=collected.on_stderr, on_report=collected.on_report
    )
    tools = await servers.start()
    settings = load_settings()
    # After one MCP result (untrusted text) every external call is asked: a person says yes.
    policy = PermissionPolicy.from_settings(settings.agent, allow_every_call)
    context = ToolContext(settings=settings, paths=paths(), store=Store.open(Path(":memory:")))
    dispatcher = Dispatcher(
        ToolRegistry(tools), policy, timeouts_from_settings(settings.agent), context=context
    )
    return servers, dispatcher


async def test_the_real_time_server_from_the_servers_file_answers_through_dispatch() -> None:
    write_servers({"time": {"command": sys.executable, "args": ["-m", "mcp_server_time"]}})
    collected = Collected()
    servers, dispatcher = await start_session(collected)
    async with servers:
        registry = dispatcher.registry
        assert sorted(registry.names()) == [
            "mcp__time__convert_time",
            "mcp__time__get_current_time",
        ]
        now_tool = registry.get("mcp__time__get_current_time")
        assert now_tool is not None and now_tool.risk == "read" and now_tool.source == "mcp:time"
        paris, bad_zone, no_zone = await dispatcher.run(
            [
                ToolCall("a", "mcp__time__get_current_time", {"timezone": "Europe/Paris"}),
                ToolCall("b", "mcp__time__get_current_time", {"timezone": "Mars/Olympus"}),
                ToolCall("c", "mcp__time__get_current_time", {}),
            ]
        )
    assert paris.status == "ok"
    assert json.loads(paris.content[0]["text"])["timezone"] == "Europe/Paris"
    assert bad_zone.status == "error" and "Mars/Olympus" in bad_zone.content[0]["text"]
    assert (
        no_zone.status == "bad_input" and "'timezone' is a required" in no_zone.content[0]["text"]
    )
    assert collected.reports == []


async def test_a_hung_mcp_tool_times_out_while_the_session_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DESKLOOP_AGENT_TIMEOUT_MCP_S", "0.5")
    write_servers({"fixture": fixture_entry()})
    servers, dispatcher = await start_session(Collected())
    async with servers:
        hung, echoed = await dispatcher.run(
            [
                ToolCall("a", "mcp__fixture__hang", {}),
                ToolCall("b", "mcp__fixture__echo", {"text": "meanwhile"}),
            ]
        )
        (after,) = await dispatcher.run([ToolCall("c", "mcp__fixture__echo", {"text": "after"})])
    assert hung.status == "timeout"
    assert hung.content[0]["text"].startswith("mcp__fixture__hang timed out after 0.5 s")
    assert echoed.status == "ok" and echoed.content[0]["text"] == "echo: meanwhile"
    assert after.status == "ok" and after.content[0]["text"] == "echo: after"


async def test_a_crashed_server_is_restarted_once_then_stopped() -> None:
    write_servers({"fixture": fixture_entry()})
    collected = Collected()
    servers, dispatcher = await start_session(collected)
    async with servers:
        (first_crash,) = await dispatcher.run([ToolCall("a", "mcp__fixture__crash", {})])
        (after_restart,) = await dispatcher.run(
            [ToolCall("b", "mcp__fixture__echo", {"text": "1"})]
        )
        (second_crash,) = await dispatcher.run([ToolCall("c", "mcp__fixture__crash", {})])
        (after_stop,) = await dispatcher.run([ToolCall("d", "mcp__fixture__echo", {"text": "2"})])
    assert first_crash.status == "error"
    assert "crashed during the call and was restarted" in first_crash.content[0]["text"]
    assert after_restart.status == "ok" and after_restart.content[0]["text"] == "echo: 1"
    assert "crashed again and is stopped" in second_crash.content[0]["text"]
    assert "is failed for the rest of this session" in after_stop.content[0]["text"]
    assert collected.reports == [
        ("fixture", "crashed and was restarted"),
        ("fixture", "crashed again; stopped for the rest of this session"),
    ]


async def test_server_stderr_goes_to_the_session_log_sink() -> None:
    write_servers({"fixture": fixture_entry()})
    collected = Collected()
    servers, dispatcher = await start_session(collected)
    async with servers:
        await dispatcher.run([ToolCall("a", "mcp__fixture__echo", {"text": "logged"})])
    assert ("fixture", "fixture server starting") in collected.stderr
    assert ("fixture", "echo called with logged") in collected.stderr


async def test_a_server_that_cannot_start_is_reported_and_the_others_still_serve() -> None:
    write_servers(
        {
            "missing": {"command": "/nonexistent/mcp-server"},
            "fixture": fixture_entry(),
            "off": {**fixture_entry(), "enabled": False},
        }
    )
    collected = Collected()
    servers, dispatcher = await start_session(collected)
    async with servers:
        (echoed,) = await dispatcher.run([ToolCall("a", "mcp__fixture__echo", {"text": "ok"})])
    assert echoed.status == "ok"
    assert [name for name, _ in collected.reports] == ["missing"]
    assert "command not found" in collected.reports[0][1]
    assert {tool.source for tool in dispatcher.registry} == {"mcp:fixture"}


async def test_servers_can_be_switched_off_for_one_session() -> None:
    configs = [StdioServerConfig("fixture", sys.executable, [str(FIXTURE_SERVER)])]
    collected = Collected()
    async with McpServers(
        configs, on_stderr=collected.on_stderr, switched_off=["fixture"]
    ) as servers:
        assert await servers.start() == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def http_fixture_server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(FIXTURE_SERVER), "--http", str(port)],
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_a_streamable_http_server_serves_its_tools(http_fixture_server: str) -> None:
    config = HttpServerConfig("web", http_fixture_server, {"Authorization": "Bearer t"})
    collected = Collected()
    async with McpServers([config], on_stderr=collected.on_stderr) as servers:
        tools = await servers.start()
        echo = next(tool for tool in tools if tool.name == "mcp__web__echo")
        blocks = await echo.run({"text": "over http"}, None)  # type: ignore[arg-type]
    assert blocks == [{"type": "text", "text": "echo: over http"}]


async def test_a_server_that_never_answers_is_given_up_on_without_a_leftover_process(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "silent-server-pid"
    silent = StdioServerConfig(
        "silent",
        sys.executable,
        [
            "-c",
            f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(60)",
        ],
    )
    collected = Collected()
    async with McpServers(
        [silent], on_stderr=collected.on_stderr, on_report=collected.on_report, start_timeout_s=1.0
    ) as servers:
        assert await servers.start() == []
    assert collected.reports == [
        (
            "silent",
            "left out of this session: MCP server 'silent' did not answer within 1 s; "
            "check its command in `deskloop mcp list` and its lines in the session log",
        )
    ]
    pid = int(marker.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
