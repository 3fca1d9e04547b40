"""The Settings API: the three-way model choice and the plain fields, in the CLI's config.toml."""

import tomllib

import httpx
import pytest

from deskloop.settings import load_settings, paths, set_setting
from deskloop.ui.settings_page import APPLIES, CLOUD_URL, NO_CLOUD_KEY


def saved() -> dict[str, object]:
    return tomllib.loads(paths().config_file.read_text())


async def test_the_page_shows_the_embedded_model_by_default(client: httpx.AsyncClient) -> None:
    view = (await client.get("/api/settings")).json()
    assert view["model_source"] == "embedded"
    assert view["next_session"] == "the embedded model on this machine (smollm2-135m-instruct)"
    assert view["embedded_model"] == "smollm2-135m-instruct" and view["warnings"] == []
    assert view["applies"] == APPLIES
    fields = {f["key"]: f for group in view["groups"] for f in group["fields"]}
    assert fields["agent.policy_destructive"]["value"] == "ask"
    assert fields["agent.policy_destructive"]["choices"] == ["auto", "ask", "deny"]
    assert fields["agent.timeout_mcp_s"]["kind"] == "number"
    assert fields["agent.model"]["value"] == load_settings().agent.model


async def test_a_custom_endpoint_is_saved_where_the_cli_reads_it(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post(
        "/api/settings",
        json={"model_source": "custom", "custom_url": "http://gpu-box:8888/",
              "values": {"agent.model": "qwen", "agent.timeout_other_s": "120"}},
    )
    assert answer.status_code == 200
    view = answer.json()
    assert view["model_source"] == "custom" and view["custom_url"] == "http://gpu-box:8888"
    assert view["next_session"].startswith("http://gpu-box:8888")
    assert saved()["agent"] == {
        "endpoint": "http://gpu-box:8888", "model": "qwen", "timeout_other_s": 120.0,
    }
    agent = load_settings().agent
    assert (agent.endpoint, agent.model, agent.timeout_other_s) == (
        "http://gpu-box:8888", "qwen", 120.0,
    )


async def test_cloud_then_embedded(client: httpx.AsyncClient) -> None:
    cloud = await client.post("/api/settings", json={"model_source": "cloud", "api_key": "sk-x"})
    assert cloud.json()["model_source"] == "cloud" and cloud.json()["api_key_set"]
    assert load_settings().agent.endpoint == CLOUD_URL
    assert load_settings().agent.api_key == "sk-x"
    # A blank key field keeps the saved key.
    embedded = await client.post("/api/settings", json={"model_source": "embedded", "api_key": ""})
    assert embedded.json()["model_source"] == "embedded"
    # The embedded model is the endpoint unset, as `deskloop config unset agent.endpoint` does.
    assert saved()["agent"] == {"api_key": "sk-x"}
    assert load_settings().agent.endpoint == ""


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"model_source": "custom", "custom_url": "gpu-box:8888"}, "http:// or https:// URL"),
        ({"model_source": "custom", "custom_url": "http://h:1http://h:2"}, "http:// or https://"),
        ({"model_source": "custom", "custom_url": ""}, "type the Custom API Endpoint"),
        ({"model_source": "moon"}, "model_source must be one of"),
        ({"values": {"agent.policy_act": "sometimes"}}, "must be one of auto, ask, deny"),
        ({"values": {"agent.timeout_mcp_s": "soon"}}, "must be a number"),
        ({"values": {"server.api_key": "x"}}, "not a setting this page changes"),
    ],
)
async def test_bad_values_are_refused_and_nothing_is_written(
    client: httpx.AsyncClient, body: dict[str, object], said: str
) -> None:
    set_setting("agent.model", "before")
    before = paths().config_file.read_text()
    body = {**body, "values": {"agent.model": "after", **body.get("values", {})}}  # type: ignore[dict-item]
    refused = await client.post("/api/settings", json=body)
    assert refused.status_code == 400
    assert said in refused.json()["error"]
    assert paths().config_file.read_text() == before


async def test_an_environment_variable_that_wins_is_said(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESKLOOP_AGENT_ENDPOINT", "http://from-env:1")
    view = (await client.get("/api/settings")).json()
    assert any("DESKLOOP_AGENT_ENDPOINT" in note for note in view["notes"])
    assert view["next_session"].startswith("http://from-env:1")


async def test_voice_is_switched_on_with_its_rate(client: httpx.AsyncClient) -> None:
    view = (await client.get("/api/settings")).json()
    (voice,) = [group for group in view["groups"] if group["title"] == "Voice"]
    assert [(f["key"], f["kind"], f["value"]) for f in voice["fields"]] == [
        ("voice.enabled", "bool", False),
        ("voice.rate", "number", 175),
    ]
    saved_view = await client.post(
        "/api/settings", json={"values": {"voice.enabled": True, "voice.rate": "200"}}
    )
    assert saved_view.status_code == 200
    assert (load_settings().voice.enabled, load_settings().voice.rate) == (True, 200)
    too_fast = await client.post("/api/settings", json={"values": {"voice.rate": "900"}})
    assert too_fast.status_code == 400 and "from 80 to 450" in too_fast.json()["error"]


def shown_values(view: dict[str, object]) -> dict[str, object]:
    """Every field as the page shows it, as its Save button sends them back."""
    return {f["key"]: f["value"] for g in view["groups"] for f in g["fields"]}  # type: ignore[attr-defined]


async def test_saving_the_page_as_shown_writes_nothing(client: httpx.AsyncClient) -> None:
    view = (await client.get("/api/settings")).json()
    answer = await client.post(
        "/api/settings", json={"model_source": "embedded", "values": shown_values(view)}
    )
    assert answer.status_code == 200 and answer.json()["saved"] == []
    assert not paths().config_file.exists()  # later changes to the defaults reach this user


async def test_only_what_changed_is_written_and_a_default_again_is_unset(
    client: httpx.AsyncClient,
) -> None:
    values = shown_values((await client.get("/api/settings")).json())
    answer = await client.post(
        "/api/settings", json={"values": {**values, "agent.timeout_mcp_s": "60"}}
    )
    assert answer.json()["saved_labels"] == ["MCP tools (s)"]
    assert saved() == {"agent": {"timeout_mcp_s": 60.0}}
    back = await client.post("/api/settings", json={"values": {**values, "agent.timeout_mcp_s": "120"}})
    assert back.json()["saved"] == ["agent.timeout_mcp_s"]
    assert saved() == {}


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({"agent.model": "  "}, "Model name must not be empty; type a value"),
        ({"agent.timeout_internal_s": ""}, "Internal tools (s) must not be empty"),
        ({"agent.timeout_internal_s": "-1"}, "Internal tools (s) must be a number above 0, not -1"),
        ({"voice.rate": "900"}, "Speaking rate (words a minute) must be a whole number from 80"),
        ({"agent.policy_act": "maybe"}, "Act (click, type) must be one of auto, ask, deny"),
    ],
)
async def test_refusals_name_the_fields_label(
    client: httpx.AsyncClient, values: dict[str, str], said: str
) -> None:
    refused = await client.post("/api/settings", json={"values": values})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert said in error and "agent." not in error and "voice." not in error
    assert not paths().config_file.exists()


async def test_the_cloud_without_a_key_says_it_will_fail_and_how_to_add_one(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = (await client.post("/api/settings", json={"model_source": "cloud"})).json()
    assert view["model_source"] == "cloud" and view["warnings"] == [NO_CLOUD_KEY]
    assert "will fail" in NO_CLOUD_KEY and "ANTHROPIC_API_KEY" in NO_CLOUD_KEY
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-env")
    assert (await client.get("/api/settings")).json()["warnings"] == []
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    keyed = (await client.post("/api/settings", json={"model_source": "cloud", "api_key": "sk-y"})).json()
    assert keyed["warnings"] == [] and keyed["saved"] == ["agent.api_key"]


async def test_the_embedded_choice_names_the_model_it_serves(client: httpx.AsyncClient) -> None:
    set_setting("server.model", "/models/Qwen2.5-3B-Instruct.Q4_K_M.gguf")
    view = (await client.get("/api/settings")).json()
    assert view["embedded_model"] == "qwen2.5-3b-instruct.q4_k_m"
    assert view["next_session"].endswith("(qwen2.5-3b-instruct.q4_k_m)")
