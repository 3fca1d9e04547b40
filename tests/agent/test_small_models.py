"""What keeps a small model on track: grounded calls, limits from the command line, and
sessions that go on without a desktop."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from scripted_server import scripted_server, tool_call

from deskloop.agent.events import read_log, session_log_path
from deskloop.agent.grounding import Grounds, ground_definitions, lean_definitions
from deskloop.agent.prompt import build_system_prompt
from deskloop.settings import AgentSettings
from deskloop.tools import without_desktop
from deskloop.tools.screen import screen_tools

DESKLOOP = [sys.executable, "-m", "deskloop"]
SCREEN_TOOLS = frozenset(tool.name for tool in screen_tools())


def no_desktop_env() -> dict[str, str]:
    """The environment of a session over SSH or on a server: no display, no session bus."""
    gone = ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "AT_SPI_BUS_ADDRESS", "WAYLAND_DISPLAY")
    return {k: v for k, v in os.environ.items() if k not in gone}


def definitions() -> list[dict[str, object]]:
    return [tool.definition() for tool in screen_tools()]


def test_screen_ids_and_apps_become_enums_of_what_exists() -> None:
    grounds = Grounds(
        element_ids=("e3", "e7", "e9"),
        running_apps=("gtk3-demo", "mousepad"),
        installed_apps=("Mousepad", "Widget Factory"),
        text_ids=("e7",),
        value_ids=("e7", "e9"),
    )
    grounded = {d["name"]: d["input_schema"] for d in ground_definitions(definitions(), grounds, SCREEN_TOOLS)}  # type: ignore[index]
    for name in ("click", "scroll", "wait_for"):
        assert grounded[name]["properties"]["id"]["enum"] == ["e3", "e7", "e9"]  # type: ignore[index]
    # Text goes only into what takes text; set_value also takes a number field.
    assert grounded["type_text"]["properties"]["id"]["enum"] == ["e7"]  # type: ignore[index]
    assert grounded["set_value"]["properties"]["id"]["enum"] == ["e7", "e9"]  # type: ignore[index]
    assert grounded["observe"]["properties"]["app"]["enum"] == ["gtk3-demo", "mousepad"]  # type: ignore[index]
    assert grounded["focus_window"]["properties"]["app"]["enum"] == ["gtk3-demo", "mousepad"]  # type: ignore[index]
    assert grounded["open_app"]["properties"]["app"]["enum"] == ["Mousepad", "Widget Factory"]  # type: ignore[index]
    assert "command" in grounded["open_app"]["properties"]  # type: ignore[operator]
    # Nothing observed yet: the plain schema stays (an empty enum would forbid every call).
    plain = ground_definitions(definitions(), Grounds(), SCREEN_TOOLS)
    assert plain == definitions()


def test_no_text_the_model_reads_gives_an_example_id() -> None:
    import re

    for tool in screen_tools():
        assert not re.search(r"\be[0-9]+\b", str(tool.definition())), tool.name


@pytest.mark.slow
def test_a_session_without_a_desktop_leaves_the_screen_tools_out_and_finishes(
    tmp_path: Path, deskloop_home: Path
) -> None:
    env = {**no_desktop_env(), "DESKLOOP_AGENT_TOOL_CALLS": "required"}  # as on the embedded model
    listed = subprocess.run(
        [*DESKLOOP, "tools"], capture_output=True, text=True, env=env, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert "click  -" in listed.stdout
    assert "left out of sessions here: no desktop (neither DISPLAY nor" in listed.stdout
    with scripted_server(tmp_path, [tool_call("finish", {"summary": "2+2 is 4."})]) as url:
        result = subprocess.run(
            [*DESKLOOP, "run", "What is 2+2?", "--endpoint", url],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr
    assert "2+2 is 4." in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    notices = [e for e in read_log(session_log_path(1)) if e["event"] == "notice"]
    assert any(
        e["kind"] == "no_desktop" and "neither DISPLAY nor DBUS_SESSION_BUS_ADDRESS" in e["message"]
        for e in notices
    ), notices


def test_the_prompt_of_a_session_without_a_desktop_says_so() -> None:
    prompt = build_system_prompt(
        AgentSettings(), [], families=[without_desktop("DISPLAY is not set")]
    )
    assert "There is no desktop here (DISPLAY is not set), so there are no screen tools" in prompt


@pytest.mark.slow
def test_max_turns_from_the_command_line_is_checked_and_stops_the_run(tmp_path: Path) -> None:
    bad = subprocess.run(
        [*DESKLOOP, "run", "Do it", "--max-turns", "zero"],
        capture_output=True, text=True, timeout=60,
    )
    assert bad.returncode == 1
    assert "deskloop: --max-turns must be a whole number, not 'zero'" in bad.stderr
    negative = subprocess.run(
        [*DESKLOOP, "run", "Do it", "--max-seconds", "-5"], capture_output=True, text=True, timeout=60
    )
    assert negative.returncode == 1 and "--max-seconds must be a number above 0, not -5" in negative.stderr
    looping = [tool_call("browser_snapshot", {})]
    with scripted_server(tmp_path, looping, repeat_last=True) as url:
        result = subprocess.run(
            [*DESKLOOP, "run", "Press OK", "--endpoint", url, "--max-turns", "2"],
            capture_output=True, text=True, env=no_desktop_env(), timeout=120,
        )
    assert result.returncode == 1
    assert "reached 2 turns" in result.stderr + result.stdout


def test_grounded_enums_are_marked_so_the_server_never_renders_them() -> None:
    grounds = Grounds(element_ids=("e3",), text_ids=("e3",), value_ids=("e3",))
    grounded = {d["name"]: d["input_schema"] for d in ground_definitions(definitions(), grounds, SCREEN_TOOLS)}  # type: ignore[index]
    assert grounded["click"]["properties"]["id"]["x-grounded"] is True  # type: ignore[index]


def test_sessions_of_required_calls_get_clicks_without_guessable_options() -> None:
    """SmolLM2-135M added "double": true to clicks on check boxes, ticking them twice."""
    lean = {d["name"]: d["input_schema"] for d in lean_definitions(definitions(), SCREEN_TOOLS)}  # type: ignore[index]
    assert set(lean["click"]["properties"]) == {"id"}  # type: ignore[arg-type]
    assert "open_app" not in lean and "focus_window" not in lean and "observe" in lean
    assert "scroll" not in lean and "wait_for" not in lean
    assert "text" in lean["type_text"]["properties"] and "id" in lean["type_text"]["properties"]  # type: ignore[operator]
    assert lean_definitions(definitions(), frozenset()) == definitions()  # other tools untouched
    # finish's summary is capped, so the grammar closes it before a runaway can start.
    from deskloop.agent.finish import FINISH

    [finish] = lean_definitions([FINISH.definition()], SCREEN_TOOLS)
    assert finish["input_schema"]["properties"]["summary"]["maxLength"] == 160  # type: ignore[index]


def test_an_action_asked_for_again_is_not_run_twice_and_the_session_finishes(
    tmp_path: Path,
) -> None:
    """Every turn a call (the small-model setting): the repeat is refused, the next turn
    is offered only finish, and the run ends as the model finishing, exit 0."""
    anna = tool_call("set_user_preferences", {"name": "Anna"})
    outputs = [anna, anna, tool_call("finish", {"summary": "You are Anna now."})]
    home = tmp_path / "home"
    env = {**no_desktop_env(), "DESKLOOP_HOME": str(home), "DESKLOOP_AGENT_TOOL_CALLS": "required"}
    with scripted_server(tmp_path, outputs) as url:
        result = subprocess.run(
            [*DESKLOOP, "run", "Call me Anna", "--endpoint", url],
            capture_output=True, text=True, env=env, timeout=120,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "You are Anna now." in result.stdout
    os.environ["DESKLOOP_HOME"] = str(home)
    try:
        from deskloop.store import Store

        with Store.open() as store:
            [session] = store.sessions()
            statuses = [(c.name, c.status) for c in store.tool_calls(session.id)]
    finally:
        os.environ.pop("DESKLOOP_HOME", None)
    assert statuses == [
        ("set_user_preferences", "ok"), ("set_user_preferences", "repeated"), ("finish", "ok")
    ]
