"""The permission policy: auto, ask or deny per risk class, asking through an injected asker."""

import asyncio
import io

import pytest
from tool_fakes import fake_tool, memory_context

from deskloop.agent.console import ask_in_terminal
from deskloop.settings import AgentSettings, load_settings
from deskloop.tools import (
    Answer,
    ApprovalAsked,
    Dispatcher,
    PermissionPolicy,
    PermissionRequest,
    PolicyError,
    ToolCall,
    ToolEvent,
    ToolRegistry,
    timeouts_from_settings,
)


class ScriptedAsker:
    """A fake user that gives the answers it was handed, one per question."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.asked: list[PermissionRequest] = []
        self.asking_now = 0

    async def __call__(self, request: PermissionRequest) -> Answer:
        self.asking_now += 1
        assert self.asking_now == 1, "two questions were on screen at once"
        await asyncio.sleep(0.01)
        self.asked.append(request)
        self.asking_now -= 1
        return self.answers.pop(0)


def run_with(policy: PermissionPolicy) -> Dispatcher:
    registry = ToolRegistry(
        [
            fake_tool("read_file", risk="read"),
            fake_tool("delete_file", risk="destructive"),
            fake_tool("send_mail", risk="external"),
        ]
    )
    return Dispatcher(
        registry, policy, timeouts_from_settings(AgentSettings()), context=memory_context()
    )


def test_defaults_ask_before_destructive_and_external_calls() -> None:
    policy = PermissionPolicy.from_settings(load_settings().agent)
    decisions = {risk: policy.decision(risk) for risk in ("read", "act", "destructive", "external")}
    assert decisions == {"read": "auto", "act": "auto", "destructive": "ask", "external": "ask"}


async def test_a_denied_class_never_runs_and_the_model_is_told_why() -> None:
    policy = PermissionPolicy({"read": "auto", "destructive": "deny"}, ScriptedAsker())
    deleted, read = await run_with(policy).run(
        [ToolCall("a", "delete_file", {"text": "x"}), ToolCall("b", "read_file", {"text": "x"})]
    )
    assert deleted.status == "denied"
    assert "policy denies those" in deleted.content[0]["text"]
    assert read.status == "ok"


async def test_ask_follows_the_users_answer() -> None:
    asker = ScriptedAsker(Answer.DENY, Answer.ALLOW_ONCE)
    policy = PermissionPolicy({"destructive": "ask"}, asker)
    run = run_with(policy)
    (refused,) = await run.run([ToolCall("a", "delete_file", {"text": "notes.txt"})])
    (allowed,) = await run.run([ToolCall("b", "delete_file", {"text": "notes.txt"})])
    assert refused.status == "denied" and "user declined" in refused.content[0]["text"]
    assert allowed.status == "ok"
    assert [(q.tool_name, q.risk, q.input) for q in asker.asked] == [
        ("delete_file", "destructive", {"text": "notes.txt"}),
    ] * 2


async def test_the_question_is_an_event_before_the_person_is_asked() -> None:
    asker = ScriptedAsker(Answer.ALLOW_ONCE)
    run = run_with(PermissionPolicy({"read": "auto", "destructive": "ask"}, asker))
    events: list[ToolEvent] = []
    run.on_event = events.append
    await run.run([ToolCall("a", "delete_file", {"text": "notes.txt"})])
    kinds = [type(event).__name__ for event in events]
    assert kinds == ["ToolStarted", "ApprovalAsked", "ToolFinished"]
    asked = events[1]
    assert isinstance(asked, ApprovalAsked) and asked.request == asker.asked[0]


async def test_allowing_for_the_session_asks_once_even_for_concurrent_calls() -> None:
    asker = ScriptedAsker(Answer.ALLOW_FOR_SESSION, Answer.ALLOW_ONCE)
    policy = PermissionPolicy({"external": "ask"}, asker)
    outcomes = await run_with(policy).run(
        [ToolCall(str(i), "send_mail", {"text": f"mail {i}"}) for i in range(3)]
    )
    assert [o.status for o in outcomes] == ["ok", "ok", "ok"]
    assert len(asker.asked) == 1


def test_a_bad_policy_value_says_how_to_fix_it() -> None:
    with pytest.raises(PolicyError, match=r"deskloop config set agent\.policy_act ask"):
        PermissionPolicy({"act": "sometimes"})


async def test_with_no_terminal_the_answer_is_no(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    request = PermissionRequest("delete_file", "destructive", {}, "")
    assert await ask_in_terminal(request) is Answer.DENY
    assert "agent.policy_destructive auto" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("reply", "answer"),
    [("y", Answer.ALLOW_ONCE), ("a", Answer.ALLOW_FOR_SESSION), ("", Answer.DENY)],
)
async def test_the_terminal_reply_is_read_as_an_answer(
    monkeypatch: pytest.MonkeyPatch, reply: str, answer: Answer
) -> None:
    class TerminalInput(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", TerminalInput(reply + "\n"))
    monkeypatch.setattr("sys.stdout", io.StringIO())
    request = PermissionRequest("send_mail", "external", {"to": "a@b.c"}, "")
    assert await ask_in_terminal(request) is answer
