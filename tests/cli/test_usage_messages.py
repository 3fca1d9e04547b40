"""What a person sees when a command line is wrong: plain words, a suggestion, exit 2."""

from __future__ import annotations

import pytest

from deskloop.cli import main


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as stopped:
        main(list(argv))
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_a_typo_in_a_command_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, "histroy")
    assert "deskloop: no command 'histroy'; did you mean history?" in err
    assert "choose one of: run, chat, history" in err


def test_a_typo_in_a_subcommand_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, "mcp", "lsit")
    assert "did you mean list?" in err
    assert "mcp_action" not in err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("mcp",), "deskloop mcp: say what to do: list, add, serve, remove, enable, disable"),
        (("config",), "deskloop config: say what to do: get, set, unset, path"),
        (("mcp", "add"), "missing NAME"),
        (("config", "set", "agent.model"), "missing VALUE"),
    ],
)
def test_missing_words_are_named_as_the_help_names_them(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], said: str
) -> None:
    err = usage_error(capsys, *argv)
    assert said in err
    for internal in ("mcp_action", "config_action", "required: name", "rest"):
        assert internal not in err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("serve", "--port", "99999"), "--port must be a port number from 0 to 65535"),
        (("serve", "--port", "eighty"), "--port must be a port number, not 'eighty'"),
        (("observe", "--budget", "-5"), "--budget must be a whole number of 1 or more"),
        (("history", "--limit", "x"), "--limit must be a whole number, not 'x'"),
        (("observe", "--pid", "x"), "--pid must be a whole number, not 'x'"),
        (("run", ""), "the task is empty: say what the agent should do"),
        (("run", "   "), "the task is empty"),
        (("chat", "--resume", "0"), "--resume must be a whole number of 1 or more"),
    ],
)
def test_bad_values_are_usage_errors_in_plain_words(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], said: str
) -> None:
    err = usage_error(capsys, *argv)
    assert said in err
    assert "invalid int value" not in err and "OverflowError" not in err


def test_bench_with_no_name_lists_the_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "benchmarks (run one with `deskloop bench NAME`):"
    assert lines[1].split() == ["NAME", "WHAT", "IT", "MEASURES"]
    names = [line.split()[0] for line in lines[2:]]
    assert {"agent", "browser", "routines", "screen", "server", "tasks", "tools"} <= set(names)
    server = next(line for line in lines if line.startswith("server "))
    assert "llama-server" in server  # each line says what its benchmark compares
    # the descriptions start in one column
    assert len({len(line) - len(line.split(maxsplit=1)[1]) for line in lines[1:]}) == 1


def test_an_unknown_benchmark_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "sever"]) == 1
    err = capsys.readouterr().err
    assert "no benchmark 'sever'; did you mean server?" in err
