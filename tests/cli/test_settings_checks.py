"""Every setting is checked when it is set, and when it is read from the file or the environment."""

from __future__ import annotations

import pytest

from deskloop.cli import main
from deskloop.settings import SettingsError, load_settings, paths


def config(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["config", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("server.port", "99999", "server.port must be a whole number from 0 to 65535, not 99999"),
        ("agent.max_turns", "0", "agent.max_turns must be a whole number of 1 or more, not 0"),
        ("agent.max_turns", "-3", "must be a whole number of 1 or more, not -3"),
        ("agent.max_turns", "2.5", "agent.max_turns must be a whole number, not '2.5'"),
        ("agent.max_session_seconds", "0", "must be a number above 0, not 0"),
        ("agent.timeout_mcp_s", "soon", "agent.timeout_mcp_s must be a number, not 'soon'"),
        ("agent.endpoint", "not-a-url", "agent.endpoint must be a URL like http://127.0.0.1:8888"),
        ("server.upstream", "ftp://x", "server.upstream must be a URL"),
        ("agent.observe_first", "maybe", "agent.observe_first must be true or false"),
        ("agent.observation_budget", "10", "must be a whole number of 50 or more, not 10"),
        ("agent.policy_act", "sometimes", "must be one of auto, ask, deny"),
        ("agent.max_turn", "3", "unknown setting 'agent.max_turn'; did you mean agent.max_turns?"),
    ],
)
def test_a_bad_value_is_refused_when_set(
    capsys: pytest.CaptureFixture[str], key: str, value: str, said: str
) -> None:
    code, _, err = config(capsys, "set", key, value)
    assert code == 1
    assert said in err
    assert " a int" not in err and " a float" not in err
    assert not paths().config_file.exists()


def test_good_values_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    assert config(capsys, "set", "server.port", "0")[0] == 0
    assert config(capsys, "set", "agent.endpoint", "https://models.example:8443/base")[0] == 0
    assert config(capsys, "set", "agent.endpoint", "")[0] == 0
    assert load_settings().server.port == 0


def test_a_bad_value_in_the_file_names_the_file_and_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths().config_dir.mkdir(parents=True)
    paths().config_file.write_text('[server]\nport = 8000\n\n[agent]\nmodel = "m"\nmax_turns = 0\n')
    code, _, err = config(capsys, "get")
    assert code == 1
    assert f"agent.max_turns in {paths().config_file} line 6 must be a whole number" in err
    assert "`deskloop config unset agent.max_turns`" in err
    # the way out it names works, and the rest of the file is kept
    code, out, _ = config(capsys, "unset", "agent.max_turns")
    assert code == 0
    assert "agent.max_turns is back to its default, 30" in out
    assert load_settings().agent.max_turns == 30
    assert load_settings().server.port == 8000


def test_an_unknown_key_in_the_file_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    paths().config_dir.mkdir(parents=True)
    paths().config_file.write_text("[agent]\nmax_turn = 5\n")
    code, _, err = config(capsys, "get", "agent.max_turns")
    assert code == 1
    assert f"unknown setting 'agent.max_turn' in {paths().config_file} line 2" in err
    assert "did you mean agent.max_turns?" in err


def test_a_bad_value_in_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DESKLOOP_AGENT_ENDPOINT", "localhost:8888")
    with pytest.raises(SettingsError, match="DESKLOOP_AGENT_ENDPOINT must be a URL"):
        load_settings()
    monkeypatch.setenv("DESKLOOP_AGENT_ENDPOINT", "http://localhost:8888")
    monkeypatch.setenv("DESKLOOP_SERVER_QUEUE_SIZE", "0")
    with pytest.raises(SettingsError, match="DESKLOOP_SERVER_QUEUE_SIZE must be a whole number"):
        load_settings()


def test_unset_of_a_key_not_in_the_file_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = config(capsys, "unset", "agent.endpoint")
    assert code == 0
    assert out.startswith("agent.endpoint was not set in ")
    assert config(capsys, "set", "agent.endpoint", "http://127.0.0.1:9")[0] == 0
    monkeypatch.setenv("DESKLOOP_AGENT_ENDPOINT", "http://127.0.0.1:7")
    code, out, _ = config(capsys, "unset", "agent.endpoint")
    assert 'back to its default, ""' in out
    assert "DESKLOOP_AGENT_ENDPOINT is set in the environment and still overrides it" in out
    assert config(capsys, "unset", "agent.nothing")[0] == 1
