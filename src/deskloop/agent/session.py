"""Opening an agent session: endpoint, store row, event log, MCP servers, tools, prompt."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anthropic

from deskloop.agent.endpoint import Endpoint, check_endpoint, resolve_endpoint
from deskloop.agent.events import SessionLog
from deskloop.agent.finish import FINISH
from deskloop.agent.grounding import server_grounds_enums
from deskloop.agent.loop import AgentSession, SessionLimits
from deskloop.agent.model_size import endpoint_health, judge_model_size
from deskloop.agent.prompt import build_system_prompt
from deskloop.agent.resident_server import ServerHold, find_resident_server, use_resident_server
from deskloop.agent.steps import Notice, SessionStarted, StepChannel
from deskloop.agent.task_size import check_task_fits, context_window
from deskloop.agent.tool_routing import SessionTools, group_by_family, routing_mode
from deskloop.mcp.client import McpServers
from deskloop.mcp.config import load_servers
from deskloop.screen import no_desktop_reason
from deskloop.screen.desktop_entries import installed_apps
from deskloop.settings import load_settings, paths
from deskloop.store import Store
from deskloop.tools import (
    Asker,
    Dispatcher,
    PermissionPolicy,
    Tool,
    ToolContext,
    ToolRegistry,
    enabled_families,
    family_tool_sets,
    timeouts_from_settings,
    without_desktop,
)


@dataclass
class SessionOptions:
    """What the command line can change for one session."""

    endpoint: str | None = None
    model: str | None = None
    resume: int | None = None
    title: str = ""
    # MCP servers switched off for this session ("all" switches every one off).
    mcp_off: Sequence[str] = ()
    extra_tools: Sequence[Tool] = ()
    # How a person is asked before a call the policy asks about; None refuses those calls.
    asker: Asker | None = None
    # Routines and the observer: nobody is there to ask, and only `allowed_tools` run
    # (None: the read-class tools).
    unattended: bool = False
    allowed_tools: frozenset[str] | None = None
    # False: no screen tools and no first observation (the observer never acts on it).
    screen: bool = True
    # `endpoint` serves the embedded model (a scheduler's resident server): treat it so.
    embedded_endpoint: bool = False
    # `deskloop run --max-turns/--max-seconds`: agent.max_turns and
    # agent.max_session_seconds for this session only (already checked).
    max_turns: int | None = None
    max_seconds: float | None = None
    # The first message, when known before opening: one too long for the model's window is
    # refused before a session is stored (agent/task_size.py).
    task: str = ""


_hold: ServerHold | None = None  # this process's hold on the resident embedded server


async def _endpoint_url(options: SessionOptions) -> tuple[Endpoint, str, bool]:
    """Where the URL comes from, the URL, and whether it is the embedded server.

    The embedded server is the resident one (agent/resident_server.py), started when none
    answers; this process holds it until `release_embedded_server`.
    """
    global _hold
    agent = load_settings().agent
    endpoint = resolve_endpoint(agent, options.endpoint)
    if endpoint.url is not None:
        return endpoint, endpoint.url, False
    server, hold = await asyncio.to_thread(use_resident_server)
    if _hold is None:
        _hold = hold
    else:
        hold.release()
    return endpoint, server.url, True


def embedded_server_needed(options: SessionOptions) -> bool:
    """Whether opening a session will start the embedded model server first (takes seconds)."""
    endpoint = resolve_endpoint(load_settings().agent, options.endpoint)
    return endpoint.url is None and find_resident_server() is None


def calls_required(setting: str, small_model: bool) -> bool:
    """Whether every turn must be a tool call (see `deskloop.agent.finish`)."""
    return setting == "required" or (setting == "auto" and small_model)


def release_embedded_server() -> None:
    """This process no longer needs the resident server; it stops once idle."""
    global _hold
    if _hold is not None:
        _hold.release()
        _hold = None


def approved_tools(registry: ToolRegistry, listed: frozenset[str] | None) -> frozenset[str]:
    """What an unattended session may run: its list, else the read-class tools; and `finish`."""
    if listed is None:
        listed = frozenset(tool.name for tool in registry if tool.risk == "read")
    return listed | {FINISH.name}


@asynccontextmanager
async def open_session(options: SessionOptions) -> AsyncIterator[AgentSession]:
    """A ready session; MCP servers and the store are closed when the block ends."""
    settings = load_settings()
    agent = settings.agent
    if not options.screen:
        settings.tools.screen = False
        agent.observe_first = False
    model = options.model or agent.model
    endpoint, url, embedded = await _endpoint_url(options)
    async with AsyncExitStack() as stack:
        client = anthropic.AsyncAnthropic(base_url=url, api_key=endpoint.api_key)
        stack.push_async_callback(client.close)
        # Before a store row or an MCP server: an endpoint that is down is said at once.
        served = await check_endpoint(client, endpoint, url, model) or model
        health = await endpoint_health(url)
        if options.task and options.resume is None:
            window = context_window(
                health, embedded or options.embedded_endpoint, settings.server.context_window
            )
            await check_task_fits(client, served, options.task, window)
        size = judge_model_size(agent.model_size, served, health)
        if health is None and size.parameters is None and (embedded or options.embedded_endpoint):
            size = judge_model_size("small", served, health)
        required = calls_required(agent.tool_calls, size.small)
        store = stack.enter_context(Store.open())
        if options.resume is not None:
            resumed = store.resume(options.resume)
            record, history = resumed.session, resumed.messages
            turns_before = max((u.turn for u in store.usage(record.id)), default=0)
        else:
            turns_before = 0
            record = store.create_session(title=options.title[:200], endpoint=url, model=served)
            history = []
        stack.callback(store.release_session, record.id)
        log = SessionLog.for_session(record.id)
        stack.callback(log.close)
        channel = StepChannel([log.consume])
        stack.callback(channel.take_waiting)  # what servers said while closing
        channel.emit(SessionStarted(record.id, url, served))
        if size.small:  # what changes how the session runs; a large model is the default
            channel.emit(Notice("model_size", f"{served} is a small model ({size.why})"))

        def report(server: str, message: str) -> None:
            channel.emit(Notice("mcp_report", f"MCP server {server!r} {message}", server))

        switched_off = [c.name for c in load_servers()] if "all" in options.mcp_off else []
        servers = McpServers(
            load_servers(),
            on_stderr=lambda server, line: channel.emit(Notice("mcp_stderr", line, server)),
            on_report=report,
            switched_off=[*options.mcp_off, *switched_off],
        )
        await stack.enter_async_context(servers)
        context = ToolContext(
            settings=settings,
            paths=paths(),
            store=store,
            session_id=record.id,
            unattended=options.unattended,
        )
        stack.push_async_callback(context.aclose)
        own = [FINISH] if required else []
        families = enabled_families(settings)
        # Unattended, the families that need a person (ask_followup) are left out, as over MCP.
        native_sets = family_tool_sets(context, for_mcp_serve=options.unattended)
        no_desktop = no_desktop_reason() if any(f.name == "screen" for f in families) else None
        if no_desktop is not None:
            # Over SSH or on a server: tasks that need no screen still run to the end.
            native_sets["screen"] = []
            families = [without_desktop(no_desktop) if f.name == "screen" else f for f in families]
            channel.emit(Notice("no_desktop", f"no desktop here ({no_desktop}): no screen tools"))
        native = [tool for tools in native_sets.values() for tool in tools]
        registry = ToolRegistry([*native, *options.extra_tools, *own])
        for refused in registry.add_each(await servers.start()):
            channel.emit(Notice("mcp_report", f"MCP tool left out: {refused}"))
        session_tools = SessionTools(
            mode=routing_mode(agent.tool_routing, size.small),
            family_tools=group_by_family(native_sets, registry),
            families=families,
            app_names=_app_names() if native_sets.get("screen") else (),
            prompt_for=lambda offered_families, offered_tools: build_system_prompt(
                agent, offered_tools, families=offered_families, calls_required=required
            ),
        )
        if options.unattended:
            context.allowed_tools = approved_tools(registry, options.allowed_tools)
        policy = PermissionPolicy.from_settings(agent, options.asker)
        dispatcher = Dispatcher(
            registry,
            policy,
            timeouts_from_settings(agent),
            context=context,
            # A small model (every turn a call) repeats the action that just worked.
            refuse_repeats=required,
        )
        system_prompt = record.system_prompt or build_system_prompt(
            agent, registry, families=families, calls_required=required
        )
        first_task = next((_text_of(m) for m in history if m.get("role") == "user"), "")
        if first_task and session_tools.route(first_task) is not None:
            system_prompt = session_tools.system_prompt()
        limits = SessionLimits.from_settings(agent)
        if options.max_turns is not None:
            limits = dataclasses.replace(limits, max_turns=options.max_turns)
        if options.max_seconds is not None:
            limits = dataclasses.replace(limits, max_session_seconds=options.max_seconds)
        grounded = agent.grounded_calls and server_grounds_enums(health)
        yield AgentSession(
            client=client,
            model=model,
            endpoint_url=url,
            system_prompt=system_prompt,
            dispatcher=dispatcher,
            store=store,
            session_id=record.id,
            channel=channel,
            limits=limits,
            history=history,
            turns_before=turns_before,
            calls_required=required,
            observe_first=agent.observe_first,
            grounded=grounded,
            small_model=size.small,
            session_tools=session_tools,
        )


def _app_names() -> list[str]:
    """Installed applications by name and by command, for choosing the task's tools."""
    names: list[str] = []
    for app in installed_apps(hidden_too=True):
        names.append(app.name)
        names.append(app.command[0].rsplit("/", 1)[-1])
    return names


def _text_of(message: Any) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    texts = [b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text"]
    return texts[0] if texts else ""
