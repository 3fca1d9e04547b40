"""Small models must call a tool every turn and end with `finish`; others write freely."""

from pathlib import Path

import pytest
from scripted_server import scripted_server, tool_call

from deskloop.agent.session import SessionOptions, calls_required, open_session
from deskloop.agent.steps import RunEnded, Step, ToolCallFinished
from deskloop.settings import SettingsError, load_settings, set_setting


def test_auto_requires_calls_only_from_a_small_model() -> None:
    assert calls_required("auto", small_model=True)
    assert not calls_required("auto", small_model=False)
    assert calls_required("required", small_model=False)
    assert not calls_required("free", small_model=True)


def test_an_unknown_mode_is_refused_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="auto, required, free"):
        set_setting("agent.tool_calls", "sometimes")
    monkeypatch.setenv("DESKLOOP_AGENT_POLICY_ACT", "maybe")
    with pytest.raises(SettingsError, match="DESKLOOP_AGENT_POLICY_ACT"):
        load_settings()


@pytest.mark.slow
async def test_finish_ends_the_task_with_its_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESKLOOP_AGENT_TOOL_CALLS", "required")
    outputs = [
        tool_call("finish", {"summary": "Typed the line into Mousepad."}),
    ]
    steps: list[Step] = []
    with scripted_server(tmp_path, outputs) as url:
        async with open_session(SessionOptions(endpoint=url, title="t")) as session:
            names = [d["name"] for d in session.dispatcher.registry.definitions()]
            prompt = session.system_prompt
            async for step in session.send("Type a line into Mousepad"):
                steps.append(step)
    assert "finish" in names
    assert "call finish" in prompt
    (finished,) = [s.outcome for s in steps if isinstance(s, ToolCallFinished)]
    assert finished.status == "ok"
    assert steps[-1] == RunEnded("end_turn", "Typed the line into Mousepad.")


@pytest.mark.slow
async def test_free_mode_has_no_finish_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESKLOOP_AGENT_TOOL_CALLS", "free")
    with scripted_server(tmp_path, ["Hello."]) as url:
        async with open_session(SessionOptions(endpoint=url, title="t")) as session:
            names = [d["name"] for d in session.dispatcher.registry.definitions()]
            steps = [step async for step in session.send("hi")]
    assert "finish" not in names
    assert steps[-1] == RunEnded("end_turn", "done")


@pytest.mark.slow
async def test_without_a_screen_the_task_goes_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    with scripted_server(tmp_path, ["Hello."]) as url:
        async with open_session(SessionOptions(endpoint=url, title="t")) as session:
            [step async for step in session.send("hi")]
            first = session.messages[0]["content"]
    assert first == [{"type": "text", "text": "hi"}]
