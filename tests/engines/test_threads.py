"""`server.threads` and `deskloop serve --threads`: a fixed thread count for people who pin
cores; 0 (the default) keeps following the free cores."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from deskloop.cli import build_parser, main
from deskloop.engines.base import EngineError, Sampling
from deskloop.engines.cores import allowed_cpus, pinned_threads
from deskloop.server.run import build_service, settings_from_args
from deskloop.settings import ServerSettings, load_settings, set_setting


def test_the_default_follows_the_free_cores_and_a_count_in_range_is_kept() -> None:
    assert load_settings().server.threads == 0
    assert pinned_threads(0) is None
    assert pinned_threads(1) == 1
    assert pinned_threads(allowed_cpus()) == allowed_cpus()


def test_more_threads_than_cpus_is_refused_with_what_fits() -> None:
    cpus = allowed_cpus()
    with pytest.raises(EngineError) as refused:
        pinned_threads(cpus + 1)
    said = str(refused.value)
    assert f"threads must be from 1 to {cpus}" in said
    assert "--threads" in said and "server.threads" in said


def test_the_flag_overrides_the_setting() -> None:
    set_setting("server.threads", "1")
    assert settings_from_args(build_parser().parse_args(["serve"])).threads == 1
    flagged = build_parser().parse_args(["serve", "--threads", "2"])
    assert settings_from_args(flagged).threads == 2


@pytest.mark.parametrize(
    ("value", "said"),
    [("-1", "must be a whole number of 1 or more (0: follow the free cores), not -1"),
     ("two", "must be a whole number, not 'two'")],
)  # fmt: skip
def test_a_bad_flag_says_what_it_takes(
    capsys: pytest.CaptureFixture[str], value: str, said: str
) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--threads", value])
    assert said in capsys.readouterr().err


def test_a_bad_setting_says_what_it_takes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "set", "server.threads", "-2"]) == 1
    assert "server.threads must be a whole number of 0 or more, not -2" in capsys.readouterr().err


def test_serving_with_too_many_threads_stops_before_loading_the_model() -> None:
    pytest.importorskip("llama_cpp")
    settings = replace(ServerSettings(), engine="llamacpp", threads=allowed_cpus() + 1)
    with pytest.raises(EngineError, match="threads must be from 1 to"):
        build_service(settings)


@pytest.mark.slow
@pytest.mark.llamacpp
def test_a_pinned_count_is_what_llama_cpp_runs_with() -> None:
    import llama_cpp

    settings = replace(ServerSettings(), engine="llamacpp", threads=1, context_window=512)
    service, _ = build_service(settings)
    engine = service.engine  # type: ignore[attr-defined]
    prompt = engine.tokenize("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    sampling = Sampling(max_tokens=4, temperature=0)
    assert list(engine.generate(prompt, sampling, cancel=threading.Event()))
    context = engine._llama._ctx.ctx
    assert llama_cpp.llama_n_threads(context) == 1
    assert llama_cpp.llama_n_threads_batch(context) == 1
    engine.close()
