"""A tool whose risk depends on its input is asked about by the risk of that input."""

from typing import Any

import pytest

from deskloop.tools import (
    Answer,
    Dispatcher,
    PermissionPolicy,
    PermissionRequest,
    RiskClass,
    TimeoutTier,
    Tool,
    ToolCall,
    ToolContext,
    ToolOutput,
    ToolRegistry,
)

QUERY = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}


async def answer(tool_input: dict[str, Any], context: ToolContext) -> ToolOutput:
    return f"ran {tool_input['query']}"


def by_statement(tool_input: dict[str, Any]) -> RiskClass:
    return "read" if tool_input["query"].lstrip().upper().startswith("SELECT") else "destructive"


QUERY_TOOL = Tool(
    "run_query",
    "A query tool (test fake).",
    QUERY,
    "destructive",
    TimeoutTier.INTERNAL,
    answer,
    classify=by_statement,
)


class RecordingAsker:
    def __init__(self) -> None:
        self.asked: list[PermissionRequest] = []

    async def __call__(self, request: PermissionRequest) -> Answer:
        self.asked.append(request)
        return Answer.DENY


def test_risk_for_uses_the_classifier_and_falls_back_to_the_risk() -> None:
    assert QUERY_TOOL.risk_for({"query": "select 1"}) == "read"
    assert QUERY_TOOL.risk_for({"query": "DELETE FROM t"}) == "destructive"
    plain = Tool("plain", "x", QUERY, "act", TimeoutTier.INTERNAL, answer)
    assert plain.risk_for({"query": "DELETE FROM t"}) == "act"


async def test_a_read_runs_and_a_write_of_the_same_tool_is_asked_about(
    tool_context: ToolContext,
) -> None:
    asker = RecordingAsker()
    policy = PermissionPolicy({"read": "auto", "destructive": "ask"}, asker)
    timeouts = dict.fromkeys(TimeoutTier, 5.0)
    run = Dispatcher(ToolRegistry([QUERY_TOOL]), policy, timeouts, context=tool_context)
    read, write = await run.run(
        [
            ToolCall("a", "run_query", {"query": "SELECT 1"}),
            ToolCall("b", "run_query", {"query": "DELETE FROM t"}),
        ]
    )
    assert read.status == "ok" and read.content[0]["text"] == "ran SELECT 1"
    assert write.status == "denied"
    assert [(q.tool_name, q.risk) for q in asker.asked] == [("run_query", "destructive")]


@pytest.mark.parametrize("unattended", [True, False])
async def test_with_nobody_to_ask_the_call_is_refused_with_the_setting_that_allows_it(
    tool_context: ToolContext, unattended: bool
) -> None:
    asker = RecordingAsker() if unattended else None
    tool_context.unattended = unattended
    policy = PermissionPolicy({"destructive": "ask"}, asker)
    verdict = await policy.check(QUERY_TOOL, {"query": "DROP TABLE t"}, tool_context)
    assert not verdict.allowed
    assert "deskloop config set agent.policy_destructive auto" in verdict.reason
    assert asker is None or asker.asked == []


async def test_an_approved_tool_list_runs_its_tools_and_refuses_the_others(
    tool_context: ToolContext,
) -> None:
    tool_context.unattended = True
    tool_context.allowed_tools = frozenset({"run_query"})
    policy = PermissionPolicy({"read": "auto", "destructive": "ask", "act": "auto"})
    other = Tool("wipe_disk", "x", QUERY, "act", TimeoutTier.INTERNAL, answer)
    approved = await policy.check(QUERY_TOOL, {"query": "DELETE FROM t"}, tool_context)
    refused = await policy.check(other, {"query": "x"}, tool_context)
    assert approved.allowed
    assert not refused.allowed and "approved to use (run_query)" in refused.reason
