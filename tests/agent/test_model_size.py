"""A small model is known by its size, not by where it runs."""

import pytest

from deskloop.agent.model_size import judge_model_size, parameters_in_name


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("qwen2.5-coder-0.5b-instruct-q4_k_m", 500_000_000),
        ("smollm2-135m-instruct", 135_000_000),
        ("Llama-3.1-8B-Instruct", 8_000_000_000),
        ("mlx-community/Qwen3-4B-4bit", 4_000_000_000),
        ("claude-opus-5-5", None),
        ("gpt-4o", None),
    ],
)
def test_the_size_in_a_model_name(name: str, parameters: int | None) -> None:
    assert parameters_in_name(name) == parameters


def test_what_the_server_reports_wins_and_the_setting_wins_over_both() -> None:
    served = judge_model_size("auto", "whatever", {"engine": "llamacpp", "parameters": 494_032_768})
    assert served.small and served.why == "494M parameters, as its server reports"
    cloud = judge_model_size("auto", "claude-opus-5-5", None)
    assert not cloud.small and cloud.why == "its size is not known: taken as large"
    big = judge_model_size("auto", "Llama-3.1-8B-Instruct", None)
    assert not big.small and big.why == "8.0B parameters, by its name"
    forced = judge_model_size("large", "qwen2.5-0.5b", None)
    assert not forced.small and forced.why == "agent.model_size = large"
    assert judge_model_size("small", "claude-opus-5-5", None).small


def test_grounded_enums_go_to_local_engines_and_to_upstreams_that_enforce_them() -> None:
    from deskloop.agent.grounding import server_grounds_enums

    assert server_grounds_enums({"engine": "llamacpp"})
    enforcing = {"engine": "openai", "upstream": {"forced_calls_through": "json_schema"}}
    assert server_grounds_enums(enforcing)
    honours_nothing = {"engine": "openai", "upstream": {"forced_calls_through": None}}
    assert not server_grounds_enums(honours_nothing)
    assert not server_grounds_enums({"engine": "openai", "upstream": {"probing": True}})
    assert not server_grounds_enums(None)
