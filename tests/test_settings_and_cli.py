"""Settings precedence, `deskloop config`, and the CLI's refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from deskloop.cli import main
from deskloop.settings import SettingsError, load_settings, paths, set_setting


def test_deskloop_home_moves_every_path(deskloop_home: Path) -> None:
    where = paths()
    for folder in (where.config_dir, where.data_dir, where.cache_dir):
        assert folder.is_relative_to(deskloop_home)
    assert where.database.name == "deskloop.db"


def test_file_then_environment_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().server.port == 8888
    set_setting("server.port", "9000")
    set_setting("agent.timeout_mcp_s", "60")
    assert load_settings().server.port == 9000
    monkeypatch.setenv("DESKLOOP_SERVER_PORT", "9100")
    settings = load_settings()
    assert settings.server.port == 9100
    assert settings.agent.timeout_mcp_s == 60.0


def test_each_tool_family_switches_off_by_file_or_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().tools.screen is True
    set_setting("tools.screen", "false")
    assert load_settings().tools.screen is False
    monkeypatch.setenv("DESKLOOP_TOOLS_SCREEN", "on")
    monkeypatch.setenv("DESKLOOP_TOOLS_BROWSER_PROFILE", "0")
    settings = load_settings()
    assert settings.tools.screen is True and settings.tools.browser_profile is False


def test_bad_values_are_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match=r"server\.port"):
        set_setting("server.port", "eighty")
    with pytest.raises(SettingsError, match="unknown setting"):
        set_setting("server.colour", "blue")
    paths().config_dir.mkdir(parents=True)
    paths().config_file.write_text("[server\nport = 1")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings()


def test_config_command_round_trip(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "set", "agent.endpoint", "http://127.0.0.1:9999"]) == 0
    assert main(["config", "get", "agent.endpoint"]) == 0
    assert capsys.readouterr().out.strip().endswith('"http://127.0.0.1:9999"')


def test_config_error_is_a_message_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "set", "nope.nothing", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("deskloop: unknown setting")
    assert "Traceback" not in err


def test_serving_off_loopback_without_a_key_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 1
    assert "--api-key" in capsys.readouterr().err


def test_unknown_benchmark_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "no-such-thing"]) == 1
    assert "available:" in capsys.readouterr().err
