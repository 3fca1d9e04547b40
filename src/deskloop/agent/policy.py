"""Permission policy: per risk class, run a tool automatically, ask the user first, or refuse."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from deskloop.agent.console import read_line
from deskloop.agent.tools import RISK_CLASSES, RiskClass, Tool
from deskloop.errors import DeskloopError
from deskloop.settings import AgentSettings

Decision = Literal["auto", "ask", "deny"]
DECISIONS: tuple[Decision, ...] = ("auto", "ask", "deny")


class PolicyError(DeskloopError):
    """A policy setting that is not auto, ask or deny."""


class Answer(StrEnum):
    ALLOW_ONCE = "allow_once"
    ALLOW_FOR_SESSION = "allow_for_session"
    DENY = "deny"


@dataclass(frozen=True)
class PermissionRequest:
    tool_name: str
    risk: RiskClass
    input: Any
    description: str


@dataclass(frozen=True)
class PermissionVerdict:
    allowed: bool
    # Said to the model when the call is refused, so it can choose another way.
    reason: str = ""


Asker = Callable[[PermissionRequest], Awaitable[Answer]]


class PermissionPolicy:
    """Decides each call from its tool's risk class; asks through an injectable `asker`."""

    def __init__(self, decisions: Mapping[RiskClass, str], asker: Asker | None = None) -> None:
        self._decisions: dict[RiskClass, Decision] = {}
        for risk in RISK_CLASSES:
            value = decisions.get(risk, "ask")
            if value not in DECISIONS:
                raise PolicyError(
                    f"agent.policy_{risk} is {value!r}; set it to auto, ask or deny "
                    f"(`deskloop config set agent.policy_{risk} ask`)"
                )
            self._decisions[risk] = value
        self._asker = asker if asker is not None else ask_in_terminal
        self._allowed_for_session: set[str] = set()
        # One question on screen at a time, even when calls run concurrently.
        self._asking = asyncio.Lock()

    @classmethod
    def from_settings(cls, agent: AgentSettings, asker: Asker | None = None) -> PermissionPolicy:
        decisions: dict[RiskClass, str] = {
            "read": agent.policy_read,
            "act": agent.policy_act,
            "destructive": agent.policy_destructive,
            "external": agent.policy_external,
        }
        return cls(decisions, asker)

    def decision(self, risk: RiskClass) -> Decision:
        return self._decisions[risk]

    async def check(self, tool: Tool, tool_input: Any) -> PermissionVerdict:
        decision = self._decisions[tool.risk]
        if decision == "auto" or tool.name in self._allowed_for_session:
            return PermissionVerdict(True)
        if decision == "deny":
            return PermissionVerdict(
                False,
                f"{tool.name} is a {tool.risk} tool and the user's policy denies those; "
                "do the task another way or tell the user what you need",
            )
        request = PermissionRequest(tool.name, tool.risk, tool_input, tool.description)
        async with self._asking:
            if tool.name in self._allowed_for_session:
                return PermissionVerdict(True)
            answer = await self._asker(request)
        if answer is Answer.ALLOW_FOR_SESSION:
            self._allowed_for_session.add(tool.name)
        if answer is Answer.DENY:
            return PermissionVerdict(
                False, f"the user declined to run {tool.name} with these arguments"
            )
        return PermissionVerdict(True)


async def ask_in_terminal(request: PermissionRequest) -> Answer:
    """Ask on the terminal; with no terminal to ask on, the answer is no."""
    if not sys.stdin.isatty():
        print(
            f"deskloop: refused {request.tool_name} ({request.risk}): no terminal to ask on; "
            f"allow with `deskloop config set agent.policy_{request.risk} auto`",
            file=sys.stderr,
        )
        return Answer.DENY
    arguments = json.dumps(request.input, ensure_ascii=False)
    if len(arguments) > 400:
        arguments = arguments[:400] + "…"
    prompt = (
        f"\nThe agent wants to run {request.tool_name} ({request.risk}) with {arguments}\n"
        "Allow? [y]es / [n]o / [a]lways this session: "
    )
    reply = ((await read_line(prompt)) or "").strip().lower()
    if reply in ("a", "always"):
        return Answer.ALLOW_FOR_SESSION
    if reply in ("y", "yes"):
        return Answer.ALLOW_ONCE
    return Answer.DENY
