"""Tool dispatch: validate, ask the policy, run concurrently under timeout tiers, report results.

A mistake by the model (unknown tool, input that fails the schema, a tool's `ToolError`, a
timeout) becomes an `is_error` result it can correct from; any other exception is a bug in
deskloop and propagates.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from deskloop.settings import AgentSettings
from deskloop.tools.contract import (
    BadToolArguments,
    ContentBlock,
    TimeoutTier,
    Tool,
    ToolContext,
    ToolError,
    result_blocks,
    text_block,
)
from deskloop.tools.policy import PermissionPolicy, PermissionRequest
from deskloop.tools.registry import ToolRegistry

OutcomeStatus = Literal[
    "ok", "error", "bad_input", "unknown_tool", "denied", "timeout", "repeated", "no_progress"
]
REPEATED_FAILURE_LIMIT = 3
# Asking this many times for the action just done ends the run (the first is refused).
REPEATED_SUCCESS_LIMIT = 2
# A read call made again with the same input that gave the same result is no progress:
# its second repeat is refused (SmolLM2-135M called search_files eight times in a row on
# an empty index), and this many refusals end the run.
READ_REPEAT_REFUSALS_LIMIT = 2
# What an acting tool's result says when the action changed nothing visible (the screen's
# diff says it so); the same such call REPEATED_FAILURE_LIMIT times ends the run too.
NO_VISIBLE_CHANGE = "no visible change"


def timeouts_from_settings(agent: AgentSettings) -> dict[TimeoutTier, float]:
    return {
        TimeoutTier.INTERNAL: agent.timeout_internal_s,
        TimeoutTier.MCP: agent.timeout_mcp_s,
        TimeoutTier.OTHER: agent.timeout_other_s,
    }


@dataclass(frozen=True)
class ToolCall:
    """One `tool_use` block from the model; `input` is whatever it sent, valid or not."""

    id: str
    name: str
    input: Any

    @classmethod
    def from_block(cls, block: Mapping[str, Any]) -> ToolCall:
        return cls(str(block["id"]), str(block["name"]), block.get("input"))


@dataclass(frozen=True)
class ToolOutcome:
    call: ToolCall
    status: OutcomeStatus
    content: list[ContentBlock]
    duration_s: float

    @property
    def is_error(self) -> bool:
        return self.status != "ok"

    def result_block(self) -> dict[str, Any]:
        """The `tool_result` block that answers the call in the next user message."""
        return {
            "type": "tool_result",
            "tool_use_id": self.call.id,
            "content": self.content,
            "is_error": self.is_error,
        }


@dataclass(frozen=True)
class ToolStarted:
    call: ToolCall
    tool: Tool | None


@dataclass(frozen=True)
class ApprovalAsked:
    """The policy is about to ask the person about this call."""

    call: ToolCall
    request: PermissionRequest


@dataclass(frozen=True)
class ToolFinished:
    outcome: ToolOutcome


ToolEvent = ToolStarted | ApprovalAsked | ToolFinished
EventSink = Callable[[ToolEvent], None]


def _ignore_event(event: ToolEvent) -> None:
    del event


class Dispatcher:
    """Runs the tool calls of a turn against one registry, policy and set of timeouts."""

    def __init__(
        self,
        registry: ToolRegistry,
        policy: PermissionPolicy,
        timeouts: Mapping[TimeoutTier, float],
        *,
        context: ToolContext,
        on_event: EventSink = _ignore_event,
        refuse_repeats: bool = False,
    ) -> None:
        self.registry = registry
        self.policy = policy
        self.timeouts = dict(timeouts)
        self.context = context
        # Told of every call as it starts and ends (the loop points it at its step queue).
        self.on_event = on_event
        self._failures: Counter[tuple[str, str]] = Counter()
        self._no_change: Counter[tuple[str, str]] = Counter()
        # Set once the same failing call has been made REPEATED_FAILURE_LIMIT times.
        self.stuck_reason: str | None = None
        # With refuse_repeats: the last action that ran and changed the screen, and how often
        # the model has asked for it again straight after (refused: a second click would
        # untick the box). Off for MCP hosts and large models, which may mean it.
        self.refuse_repeats = refuse_repeats
        self._last_effect: tuple[str, str] | None = None
        self._effect_repeats = 0
        # Set when the model keeps asking for an action that is already done.
        self.repeat_reason: str | None = None
        # Read calls: the digest of each call's last result and how often it came back the
        # same; tools refused for that, left out of the next turn's offer.
        self._read_results: dict[tuple[str, str], tuple[str, int]] = {}
        self._read_refusals = 0
        self.withheld: set[str] = set()
        # The tools the model is offered (None: all); a call to another says how to get it.
        self.is_offered: Callable[[str], bool] = lambda name: True
        self.not_offered_hint: Callable[[str], str] = lambda name: ""

    async def run(self, calls: Sequence[ToolCall]) -> list[ToolOutcome]:
        """Run every call concurrently; outcomes come back in the order of `calls`."""
        tasks = [asyncio.ensure_future(self.run_one(call)) for call in calls]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def run_one(self, call: ToolCall) -> ToolOutcome:
        started = time.perf_counter()
        tool = self.registry.get(call.name)
        self.on_event(ToolStarted(call, tool))
        key = _call_key(call)
        reads = tool is not None and _reads(tool, call.input)
        if (
            self.refuse_repeats
            and tool is not None
            and tool.risk != "read"
            and key == self._last_effect
        ):
            status, content = self._refuse_repeat(call)
        elif reads and self._read_results.get(key, ("", 0))[1] >= 1:
            status, content = self._refuse_read_repeat(call)
        elif tool is not None and not self.is_offered(tool.name):
            status = "unknown_tool"
            content = [text_block(f"{tool.name} is not offered here. {self.not_offered_hint(tool.name)}")]
        else:
            status, content = await self._outcome(call, tool)
            if tool is not None and tool.risk != "read" and status == "ok":
                self._last_effect = None if changed_nothing(content) else key
                self._effect_repeats = 0
            if reads and status == "ok":  # a failing read is counted as a failure
                self._note_read(key, content)
        outcome = ToolOutcome(call, status, content, time.perf_counter() - started)
        # What the tool itself returned (not our own refusals) is what the model now reads.
        if tool is not None and tool.untrusted and status in ("ok", "error"):
            text = " ".join(str(b.get("text", "")) for b in content if b.get("type") == "text")
            self.policy.note_untrusted(tool, call.input, text)
        if outcome.is_error and status not in ("repeated", "no_progress"):
            self._count_failure(outcome)
        elif tool is not None and tool.risk != "read" and changed_nothing(content):
            self._count_no_change(outcome)
        self.on_event(ToolFinished(outcome))
        return outcome

    async def _outcome(
        self, call: ToolCall, tool: Tool | None
    ) -> tuple[OutcomeStatus, list[ContentBlock]]:
        if tool is None:
            return "unknown_tool", [text_block(self._unknown_tool_message(call.name))]
        problems = self._input_problems(tool, call.input)
        if problems:
            return "bad_input", [text_block(f"invalid input for {tool.name}: {problems}")]
        verdict = await self.policy.check(
            tool,
            call.input,
            self.context,
            on_ask=lambda request: self.on_event(ApprovalAsked(call, request)),
        )
        if not verdict.allowed:
            return "denied", [text_block(f"permission denied: {verdict.reason}")]
        seconds = self.timeouts[tool.timeout_tier]
        try:
            async with asyncio.timeout(seconds) as deadline:
                output = await tool.run(call.input, self.context)
        except TimeoutError:
            if not deadline.expired():
                raise
            return "timeout", [
                text_block(
                    f"{tool.name} timed out after {seconds:g} s and was cancelled; "
                    "try a smaller request or another way"
                )
            ]
        except BadToolArguments as exc:
            return "bad_input", [text_block(f"invalid input for {tool.name}: {exc}")]
        except ToolError as exc:
            return "error", [text_block(f"{tool.name} failed: {exc}")]
        return "ok", result_blocks(output)

    def _unknown_tool_message(self, name: str) -> str:
        names = self.registry.names()
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        listed = ", ".join(names[:40]) + (", …" if len(names) > 40 else "")
        return f"unknown tool {name!r}.{hint} Available tools: {listed}"

    def _input_problems(self, tool: Tool, tool_input: Any) -> str:
        if not isinstance(tool_input, dict):
            return f"the input must be a JSON object, got {type(tool_input).__name__}"
        errors = sorted(
            self.registry.validator(tool.name).iter_errors(tool_input),
            key=lambda error: list(map(str, error.absolute_path)),
        )
        described = []
        for error in errors[:5]:
            where = "/".join(map(str, error.absolute_path))
            described.append(f"at {where!r}: {error.message}" if where else error.message)
        return "; ".join(described)

    def _refuse_repeat(self, call: ToolCall) -> tuple[OutcomeStatus, list[ContentBlock]]:
        """The action just done, asked for again: not run twice (a check box would untick)."""
        self._effect_repeats += 1
        if self._effect_repeats >= REPEATED_SUCCESS_LIMIT and self.repeat_reason is None:
            self.repeat_reason = (
                f"the model asked {self._effect_repeats} more times for {call.name}, which had "
                "already been done, instead of finishing"
            )
        return "repeated", [
            text_block(
                f"not run: your previous call was this same {call.name}, and it worked (its "
                "result shows the change). If that completes the task, call finish now with "
                "one sentence for the user saying what you did."
            )
        ]

    def _note_read(self, key: tuple[str, str], content: Sequence[ContentBlock]) -> None:
        digest = json.dumps(content, sort_keys=True, default=repr)
        last, repeats = self._read_results.get(key, ("", -1))
        self._read_results[key] = (digest, repeats + 1 if digest == last else 0)

    def _refuse_read_repeat(self, call: ToolCall) -> tuple[OutcomeStatus, list[ContentBlock]]:
        """A read that gave the same answer twice would give it again: not run."""
        self._read_refusals += 1
        self.withheld.add(call.name)
        if self._read_refusals >= READ_REPEAT_REFUSALS_LIMIT and self.repeat_reason is None:
            self.repeat_reason = (
                f"the model kept repeating {call.name} with the same input, which gave the "
                "same result each time"
            )
        return "no_progress", [
            text_block(
                f"not run: {call.name} with this input already gave the same result twice, "
                "so a third call would too. Use that result, or do something else."
            )
        ]

    def _count_no_change(self, outcome: ToolOutcome) -> None:
        """An action that changed nothing visible, repeated, is as stuck as a failing one."""
        call = outcome.call
        key = _call_key(call)
        self._no_change[key] += 1
        if self._no_change[key] >= REPEATED_FAILURE_LIMIT and self.stuck_reason is None:
            self.stuck_reason = (
                f"the model made the same call {REPEATED_FAILURE_LIMIT} times and nothing "
                f"visible changed ({call.name} with {key[1]})"
            )

    def _count_failure(self, outcome: ToolOutcome) -> None:
        call = outcome.call
        key = _call_key(call)
        self._failures[key] += 1
        if self._failures[key] >= REPEATED_FAILURE_LIMIT and self.stuck_reason is None:
            said = " ".join(str(b.get("text", "")) for b in outcome.content)
            self.stuck_reason = (
                f"the model made the same failing call {REPEATED_FAILURE_LIMIT} times "
                f"({call.name} with {key[1]}); last error: {said}"
            )


def _call_key(call: ToolCall) -> tuple[str, str]:
    return (call.name, json.dumps(call.input, sort_keys=True, default=repr))


def changed_nothing(content: Sequence[ContentBlock]) -> bool:
    return any(
        NO_VISIBLE_CHANGE in str(block.get("text", ""))
        for block in content
        if block.get("type") == "text"
    )


def _reads(tool: Tool, tool_input: Any) -> bool:
    """Whether this call only reads (its risk class for this input)."""
    try:
        return tool.risk_for(tool_input) == "read"
    except (TypeError, KeyError, ValueError, AttributeError):
        return tool.risk == "read"
