"""Settings: which model answers (embedded, cloud, or a custom endpoint), model, timeouts, policy, voice.

Reads and writes the same config.toml as `deskloop config`, through its validation. A save
is all or nothing: when one value is refused, the file is put back as it was. Only what the
person changed is written, so a later change to a default still reaches them.
"""

from __future__ import annotations

import os
import tomllib
from typing import Any, Literal
from urllib.parse import urlparse

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from deskloop.agent.endpoint import resolve_endpoint
from deskloop.agent.resident_server import find_resident_server
from deskloop.engines.models import EMBEDDED_MODEL_ID
from deskloop.settings import (
    CHOICES,
    Settings,
    SettingsError,
    checked_value,
    default_setting,
    load_settings,
    paths,
    set_setting,
    setting_keys,
    unset_setting,
)
from deskloop.ui.http import BadRequest, json_body, text_field

CLOUD_URL = "https://api.anthropic.com"
ModelSource = Literal["embedded", "cloud", "custom"]
MODEL_SOURCES: tuple[ModelSource, ...] = ("embedded", "cloud", "custom")
APPLIES = "Changes apply to the next session; sessions already open keep what they started with."
NO_CLOUD_KEY = (
    "The Anthropic cloud needs an API key, and none is saved or set: sessions will fail. "
    "Type your key (from console.anthropic.com) in API key and save, or set "
    "ANTHROPIC_API_KEY where deskloop runs."
)

# The page's groups of plain fields: (title, note, keys). Voice keys are found by name, so
# the group fills in as the speech settings arrive.
LABELS = {
    "agent.model": "Model name",
    "agent.timeout_internal_s": "Internal tools (s)",
    "agent.timeout_mcp_s": "MCP tools (s)",
    "agent.timeout_other_s": "Other tools (s)",
    "agent.policy_read": "Read (look, never change)",
    "agent.policy_act": "Act (click, type)",
    "agent.policy_destructive": "Destructive (delete, overwrite)",
    "agent.policy_external": "External (send, post, third-party)",
    "voice.enabled": "Speak answers aloud",
    "voice.rate": "Speaking rate (words a minute)",
}
GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Model", "The name the endpoint is asked for.", ("agent.model",)),
    (
        "Tool timeouts",
        "How long a tool call may run before the model is told it timed out.",
        ("agent.timeout_internal_s", "agent.timeout_mcp_s", "agent.timeout_other_s"),
    ),
    (
        "Permission policy",
        "Per kind of tool: run it (auto), ask you first (ask), or refuse (deny).",
        ("agent.policy_read", "agent.policy_act", "agent.policy_destructive",
         "agent.policy_external"),
    ),
)
VOICE_NOTE = "How the agent speaks and listens."


def voice_keys() -> tuple[str, ...]:
    return tuple(
        key for key in setting_keys() if key.startswith(("speech.", "voice.")) or "voice" in key
    )


def page_groups() -> list[tuple[str, str, tuple[str, ...]]]:
    groups = list(GROUPS)
    voice = voice_keys()
    if voice:
        groups.append(("Voice", VOICE_NOTE, voice))
    return groups


def editable_keys() -> set[str]:
    return {key for _, _, keys in page_groups() for key in keys}


def _value(settings: Settings, key: str) -> Any:
    section, _, name = key.partition(".")
    return getattr(getattr(settings, section), name)


def _kind(default: Any) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int | float):
        return "number"
    return "text"


def _env_name(key: str) -> str:
    section, _, name = key.partition(".")
    return f"DESKLOOP_{section}_{name}".upper()


def embedded_model_name(settings: Settings) -> str:
    """The embedded server's own model name: the running one's, else what it would load."""
    running = find_resident_server()
    if running is not None:
        return running.model
    model = settings.server.model
    if not model or model in ("embedded", "smollm2"):
        return EMBEDDED_MODEL_ID
    return model.rstrip("/").rsplit("/", 1)[-1].removesuffix(".gguf").lower()


def label_of(key: str) -> str:
    return LABELS.get(key, key.partition(".")[2].replace("_", " ").capitalize())


def model_source(endpoint: str) -> ModelSource:
    if not endpoint:
        return "embedded"
    if endpoint.rstrip("/") == CLOUD_URL:
        return "cloud"
    return "custom"


def describe_next_session(settings: Settings) -> str:
    """Which model the next session will talk to, said as the page shows it."""
    endpoint = resolve_endpoint(settings.agent)
    if endpoint.url is None:
        return f"the embedded model on this machine ({embedded_model_name(settings)})"
    if endpoint.url == CLOUD_URL:
        return f"the Anthropic cloud ({CLOUD_URL}), model {settings.agent.model}"
    return f"{endpoint.url} ({endpoint.source}), model {settings.agent.model}"


def settings_view() -> dict[str, Any]:
    settings = load_settings()
    defaults = Settings()
    agent = settings.agent
    overridden = {
        key: _env_name(key)
        for key in ("agent.endpoint", "agent.api_key", *editable_keys())
        if _env_name(key) in os.environ
    }
    notes = [
        f"{env} is set where `deskloop ui` runs, and wins over what is saved here for "
        f"{_saved_label(key)}."
        for key, env in overridden.items()
    ]
    if not agent.endpoint and os.environ.get("ANTHROPIC_BASE_URL"):
        notes.append(
            "ANTHROPIC_BASE_URL is set where `deskloop ui` runs: with the embedded choice, "
            f"sessions go to {os.environ['ANTHROPIC_BASE_URL']} instead."
        )
    source = model_source(agent.endpoint)
    key_missing = source == "cloud" and not agent.api_key and not os.environ.get(
        "ANTHROPIC_API_KEY"
    )
    warnings = [NO_CLOUD_KEY] if key_missing else []
    groups = []
    for title, note, keys in page_groups():
        group_fields = []
        for key in keys:
            default = _value(defaults, key)
            group_fields.append(
                {
                    "key": key,
                    "label": label_of(key),
                    "kind": _kind(default),
                    "value": _value(settings, key),
                    "choices": list(CHOICES.get(key, ())),
                }
            )
        groups.append({"title": title, "note": note, "fields": group_fields})
    return {
        "model_source": source,
        "custom_url": agent.endpoint if source == "custom" else "",
        "embedded_model": embedded_model_name(settings),
        "warnings": warnings,
        "cloud_url": CLOUD_URL,
        "api_key_set": bool(agent.api_key),
        "api_key_from_environment": bool(os.environ.get("ANTHROPIC_API_KEY")),
        "groups": groups,
        "notes": notes,
        "next_session": describe_next_session(settings),
        "applies": APPLIES,
        "config_file": str(paths().config_file),
    }


def check_endpoint_url(url: str) -> str:
    parsed = urlparse(url)
    try:
        valid = parsed.scheme in ("http", "https") and bool(parsed.hostname) and (
            parsed.port is None or parsed.port > 0
        )
    except ValueError:  # a port that is not a number
        valid = False
    if not valid:
        raise BadRequest(
            f"the Custom API Endpoint must be an http:// or https:// URL such as "
            f"http://gpu-box:8888, not {url!r}"
        )
    return url.rstrip("/")


def planned_changes(body: dict[str, Any]) -> dict[str, str | None]:
    """The keys this save writes, with their raw values (None: back to the default).

    Values are checked here, so a refusal names the page's label, not the setting's key;
    a value the person left as it was is not written.
    """
    changes: dict[str, str | None] = {}
    current = load_settings()
    source = body.get("model_source")
    if source is not None:
        if source not in MODEL_SOURCES:
            raise BadRequest(f"model_source must be one of {', '.join(MODEL_SOURCES)}")
        if source == "embedded":
            changes["agent.endpoint"] = None
        elif source == "cloud":
            changes["agent.endpoint"] = CLOUD_URL
        else:
            url = text_field(body, "custom_url")
            if not url:
                raise BadRequest("type the Custom API Endpoint's URL, e.g. http://gpu-box:8888")
            changes["agent.endpoint"] = check_endpoint_url(url)
    api_key = text_field(body, "api_key")
    if api_key:  # blank keeps the key already saved
        changes["agent.api_key"] = api_key
    values = body.get("values", {})
    if not isinstance(values, dict):
        raise BadRequest("values must be an object of setting: value")
    allowed = editable_keys()
    for key, raw in values.items():
        if key not in allowed:
            raise BadRequest(f"{key!r} is not a setting this page changes")
        label = label_of(key)
        if isinstance(raw, bool):
            raw = "true" if raw else "false"
        if not isinstance(raw, str | int | float):
            raise BadRequest(f"{label} must be a single value")
        if isinstance(raw, str) and not raw.strip():
            raise BadRequest(
                f"{label} must not be empty; type a value (its default is {default_setting(key)})"
            )
        try:
            value = checked_value(key, raw, label)
        except SettingsError as exc:
            raise BadRequest(str(exc)) from exc
        if value == _value(current, key):
            continue  # as it was: a default stays a default
        changes[key] = None if value == default_setting(key) else str(raw).strip()
    return {key: raw for key, raw in changes.items() if not _unchanged(key, raw)}


def _unchanged(key: str, raw: str | None) -> bool:
    """Whether writing `raw` (None: unset) would leave config.toml's value for `key` as it is."""
    if raw is None:
        section, _, name = key.partition(".")
        table = _saved().get(section, {})
        return not isinstance(table, dict) or name not in table
    if key in ("agent.endpoint", "agent.api_key"):  # the model choice: as saved, not as set
        section, _, name = key.partition(".")
        table = _saved().get(section, {})
        return isinstance(table, dict) and table.get(name) == raw
    return False


def _saved() -> dict[str, Any]:
    config_file = paths().config_file
    try:
        return tomllib.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def apply_changes(changes: dict[str, str | None]) -> None:
    """Write every change through the settings' own checks, or none of them."""
    config_file = paths().config_file
    before = config_file.read_bytes() if config_file.exists() else None
    try:
        for key, raw in changes.items():
            if raw is None:
                unset_setting(key)
            else:
                set_setting(key, raw)
    except SettingsError:
        if before is None:
            config_file.unlink(missing_ok=True)
        else:
            config_file.write_bytes(before)
        raise


async def show_settings(request: Request) -> Response:
    return JSONResponse(settings_view())


async def save_settings(request: Request) -> Response:
    changes = planned_changes(await json_body(request))
    apply_changes(changes)
    view = settings_view()
    view["saved"] = sorted(changes)
    view["saved_labels"] = [_saved_label(key) for key in sorted(changes)]
    return JSONResponse(view)


def _saved_label(key: str) -> str:
    return {"agent.endpoint": "Which model answers", "agent.api_key": "API key"}.get(
        key, label_of(key)
    )


def settings_routes() -> list[BaseRoute]:
    return [
        Route("/api/settings", show_settings, methods=["GET"]),
        Route("/api/settings", save_settings, methods=["POST"]),
    ]

