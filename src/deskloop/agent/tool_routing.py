"""A session's tool offer: every family, or those its task calls for (`agent.tool_routing`).

The families are chosen from the first message and only grow (a later message that calls
for another family adds it; `more_tools` adds one on the model's request), so within a
task the system prompt and the tool list, and with them the server's prefix cache, stay
the same from turn to turn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from deskloop.tools import Tool, ToolFamily
from deskloop.tools.routing import (
    MORE_TOOLS_NAME,
    Routing,
    ToolOffer,
    more_tools_tool,
    route_everything,
    route_task,
)


def routing_mode(setting: str, small_model: bool) -> str:
    """"all" or "task", from agent.tool_routing ("auto": task for small models)."""
    if setting == "auto":
        return "task" if small_model else "all"
    return setting


@dataclass
class SessionTools:
    """Which of the session's tools the model is offered, and the system prompt that goes
    with them (built by `prompt_for` from the offered families and tools)."""

    mode: str
    family_tools: Mapping[str, Sequence[Tool]]  # family or "mcp:<server>" -> its tools
    families: Sequence[ToolFamily]
    app_names: Sequence[str]
    prompt_for: Callable[[Sequence[ToolFamily], Sequence[Tool]], str]
    offer: ToolOffer | None = None
    more_tools: Tool | None = None

    def route(self, task: str) -> str | None:
        """Choose (or widen) the offer for `task`; the words for the transcript if it changed."""
        names = list(self.family_tools)
        if self.mode != "task":
            if self.offer is None:
                self.offer = self._offer(route_everything(names))
            return None
        routing = route_task(
            task, names, app_names=self.app_names, mcp_servers=self._mcp_words()
        )
        if self.offer is None:
            self.offer = self._offer(routing)
            self.more_tools = more_tools_tool(self.offer)
            return self.offer.routing.describe()
        new = [name for name in routing.families if name not in self.offer.families()]
        for name in new:
            self.offer.add(name)
        if not new:
            return None
        return "tools added for this message: " + ", ".join(
            f"{name} ({routing.reasons[name]})" for name in new
        )

    def offered_tools(self, tools: Iterable[Tool]) -> list[Tool]:
        offer = self.offer
        return [tool for tool in tools if offer is None or offer.offers(tool.name)]

    def system_prompt(self) -> str:
        offered = set(self.offer.families()) if self.offer is not None else set(self.family_tools)
        families = [family for family in self.families if family.name in offered]
        tools = [tool for name, group in self.family_tools.items() if name in offered for tool in group]
        return self.prompt_for(families, tools)

    def hint_for(self, tool_name: str) -> str:
        """What to do about a call to a tool that is not offered."""
        if self.offer is None:
            return ""
        family = self.offer.family_of(tool_name)
        if family is None or self.more_tools is None:
            return ""
        return f"Call {MORE_TOOLS_NAME} with family {family!r} first."

    def _offer(self, routing: Routing) -> ToolOffer:
        names = {name: [tool.name for tool in tools] for name, tools in self.family_tools.items()}
        return ToolOffer(family_tools=names, routing=routing)

    def _mcp_words(self) -> dict[str, str]:
        return {
            name.removeprefix("mcp:"): " ".join(
                [name.removeprefix("mcp:")]
                + [f"{tool.name.split('__')[-1]} {tool.description}" for tool in tools]
            )
            for name, tools in self.family_tools.items()
            if name.startswith("mcp:")
        }


def group_by_family(
    native: Mapping[str, Sequence[Tool]], others: Iterable[Tool]
) -> dict[str, list[Tool]]:
    """Native families, then each MCP server as a family of its own ("mcp:<server>")."""
    grouped = {name: list(tools) for name, tools in native.items()}
    for tool in others:
        if tool.source.startswith("mcp:"):
            grouped.setdefault(tool.source, []).append(tool)
    return grouped
