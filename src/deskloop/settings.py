"""Where deskloop keeps things, and the settings a user can change.

Settings come from three places, later ones winning: built-in defaults, `config.toml`
in the config dir, and `DESKLOOP_<SECTION>_<KEY>` environment variables. `DESKLOOP_HOME`
moves every path under one folder (tests use it).
"""

from __future__ import annotations

import difflib
import os
import sys
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs
import tomli_w

from deskloop.errors import DeskloopError

APP_NAME = "deskloop"


class SettingsError(DeskloopError):
    """A setting that cannot be read or written; the message says which and how to fix it."""


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path
    cache_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def mcp_servers_file(self) -> Path:
        return self.config_dir / "mcp-servers.json"

    @property
    def database(self) -> Path:
        return self.data_dir / "deskloop.db"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"


def paths() -> Paths:
    """The platform's folders, or all of them under `DESKLOOP_HOME` when it is set."""
    home = os.environ.get("DESKLOOP_HOME")
    if home:
        root = Path(home).expanduser()
        return Paths(root / "config", root / "data", root / "cache")
    if sys.platform == "darwin":
        support = Path.home() / "Library" / "Application Support" / APP_NAME
        return Paths(support, support, Path(platformdirs.user_cache_dir(APP_NAME)))
    return Paths(
        Path(platformdirs.user_config_dir(APP_NAME)),
        Path(platformdirs.user_data_dir(APP_NAME)),
        Path(platformdirs.user_cache_dir(APP_NAME)),
    )


@dataclass
class ServerSettings:
    """`deskloop serve`: which engine and model, and how the HTTP side behaves."""

    host: str = "127.0.0.1"
    port: int = 8888
    engine: str = ""  # empty: the platform default (mlx on Apple Silicon, llamacpp elsewhere)
    model: str = ""  # empty: the embedded SmolLM2-135M-Instruct
    upstream: str = ""  # base URL for the openai and anthropic engines
    upstream_api_key: str = ""
    api_key: str = ""
    context_window: int = 8192
    # Threads for llama.cpp; 0: as many as the cores other processes leave free, looked
    # at before each batch (engines/cores.py). Set it when the model has cores to itself.
    threads: int = 0
    max_body_bytes: int = 32 * 1024 * 1024
    queue_size: int = 16  # requests waiting per engine; one more gets 429
    ping_interval_s: float = 5.0
    tool_format: str = ""  # empty: chosen from the model's metadata and template
    tool_diet: bool = False
    # Tokens a tool call's grammar forces (`{"name": "`, keys, closing braces) are written
    # without a forward pass each and evaluated in one batch; off only to compare.
    fast_forward: bool = True
    # Values the answer copies from the conversation (ids, paths, names) are guessed from
    # the prompt and verified in one batch (prompt drafts); the answers are the same either
    # way. Off by default: on a 2-core CPU a batch costs nearly a pass per token, and
    # `deskloop bench server --part drafts` measured 1.15x the time on the embedded
    # SmolLM2 (0.96x on Qwen2.5-Coder-0.5B); a gain only where a long value is copied.
    prompt_drafts: bool = False
    # Through an upstream: "read" a call the model wrote as text (a lone JSON object naming
    # a declared tool, with valid arguments) as a tool_use; "off" leaves it text.
    text_tool_calls: str = "read"
    # `claude-*` names and these aliases map to the served model.
    aliases: list[str] = field(default_factory=list)
    # The embedded model server that commands share stops after this many minutes with no
    # request and no command using it (agent/resident_server.py).
    idle_minutes: float = 15.0


@dataclass
class AgentSettings:
    """The agent loop: which endpoint it talks to and its limits."""

    endpoint: str = ""
    model: str = "claude-opus-5-5"
    api_key: str = ""
    max_turns: int = 30
    max_tokens_per_turn: int = 1024
    max_session_tokens: int = 200_000
    max_session_seconds: float = 900.0
    timeout_internal_s: float = 10.0
    timeout_mcp_s: float = 120.0
    timeout_other_s: float = 300.0
    policy_read: str = "auto"
    policy_act: str = "auto"
    policy_destructive: str = "ask"
    policy_external: str = "ask"
    user_name: str = ""
    # The language the agent answers in (a name or code, e.g. "German" or "de"); empty: the user's.
    language: str = ""
    # Set by `complete_onboarding` once the first-run questions are answered.
    onboarded: bool = False
    observation_budget: int = 400
    # "auto": every turn must be a tool call (ending with `finish`) when the model is small
    # (see model_size), which chooses badly between writing and acting; "required" or
    # "free" force it either way.
    tool_calls: str = "auto"
    # "auto": a model under about 4B parameters (as its server reports, or its name says)
    # is small and gets the small-model handling: every turn a call, lean schemas, the
    # task's tools and steps, typed values from the task. "small" or "large" decide it.
    model_size: str = "auto"
    # Which tool families a session offers: "all", "task" (those the task's words call
    # for, plus more_tools to ask for others), or "auto" (task for small models, else all).
    tool_routing: str = "auto"
    # Start each session with one observation (of the window the task names, or the
    # focused one) in the first message.
    observe_first: bool = True
    # Send the screen tools' id and app parameters as enums of what is on screen and
    # running (only to a deskloop server with a local model: see agent/grounding.py).
    grounded_calls: bool = True
    # The first observation looks at the window the task names, not the focused one.
    target_named_window: bool = True


@dataclass
class ToolsSettings:
    """One switch per built-in tool family (`deskloop tools` lists what each brings)."""

    screen: bool = True
    followup: bool = True
    sql: bool = True
    files: bool = True
    graph: bool = True
    observer: bool = True
    preferences: bool = True
    speech: bool = True
    browser_profile: bool = True
    permissions: bool = True
    routines: bool = True
    browser: bool = True


@dataclass
class BrowserSettings:
    """The browser tools: which browser to attach to, and whether deskloop may start its own."""

    # The browser's user-data directory (where DevToolsActivePort appears), when not a
    # standard one, e.g. ~/.config/google-chrome-custom; not a profile such as Default.
    user_data_dir: str = ""
    # Consent, given once: start a browser on <data dir>/browser-profile without asking
    # when no running browser can be attached.
    start_own: bool = False
    # The browser that route starts (empty: the first of Chrome, Chromium, Brave found),
    # and extra arguments for it (e.g. --headless=new on a machine without a display).
    executable: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class SchedulerSettings:
    """`deskloop scheduler`: routines' defaults, how often it looks, and the observer."""

    # The longest wait before a change to the routines (a new one, a run now) is seen.
    poll_s: float = 2.0
    routine_timeout_s: float = 900.0
    # The observer reads a conversation every this many user/assistant turn pairs; 0: never.
    observer_every: int = 10
    # Keep one session process started ahead of the next fire: a fire then skips about
    # 2 s of imports (bench routines), for about 130 MB held while idle.
    standby_child: bool = True


@dataclass
class VoiceSettings:
    """Spoken answers (`speak_response`): off unless the user turns them on."""

    enabled: bool = False
    rate: int = 175  # words per minute, for espeak-ng `-s` and macOS `say -r` alike


@dataclass
class FilesSettings:
    """The folders `scan_files` indexes; empty: Downloads, Documents, Desktop and project folders."""

    roots: list[str] = field(default_factory=list)


@dataclass
class SqlSettings:
    """`execute_sql`: read-only unless writes to the user's own tables are allowed here."""

    allow_writes: bool = False


@dataclass
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    agent: AgentSettings = field(default_factory=AgentSettings)
    tools: ToolsSettings = field(default_factory=ToolsSettings)
    browser: BrowserSettings = field(default_factory=BrowserSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    files: FilesSettings = field(default_factory=FilesSettings)
    sql: SqlSettings = field(default_factory=SqlSettings)

    SECTIONS = ("server", "agent", "tools", "browser", "scheduler", "voice", "files", "sql")


_KIND_WORDS = {bool: "true or false", int: "a whole number", float: "a number"}


def _coerce(value: Any, current: Any, where: str) -> Any:
    """Turn a TOML or environment value into the type of the default it replaces."""
    try:
        if isinstance(current, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(value)
        if isinstance(current, int):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        if isinstance(current, float):
            if isinstance(value, bool):
                raise ValueError(value)
            number = float(value)
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError(value)
            return number
        if isinstance(current, list):
            if isinstance(value, list):
                return [str(v) for v in value]
            return [part.strip() for part in str(value).split(",") if part.strip()]
        if isinstance(value, dict | list):
            raise ValueError(value)
        return str(value)
    except (TypeError, ValueError, OverflowError) as exc:
        kind = _KIND_WORDS.get(type(current), "text")
        raise SettingsError(f"{where} must be {kind}, not {value!r}") from exc


# Settings that take one of a few words; checked wherever a value comes in.
_POLICY = ("auto", "ask", "deny")
CHOICES: dict[str, tuple[str, ...]] = {
    "server.text_tool_calls": ("read", "off"),
    "agent.tool_calls": ("auto", "required", "free"),
    "agent.model_size": ("auto", "small", "large"),
    "agent.tool_routing": ("auto", "all", "task"),
    "agent.policy_read": _POLICY,
    "agent.policy_act": _POLICY,
    "agent.policy_destructive": _POLICY,
    "agent.policy_external": _POLICY,
}
# Every number must be above zero unless it has its own range here (inclusive; None: no top).
RANGES: dict[str, tuple[float, float | None]] = {
    "server.port": (0, 65535),
    "server.threads": (0, None),  # 0: the adaptive default
    "agent.observation_budget": (50, None),
    "scheduler.observer_every": (0, None),  # 0 switches the observer off
    "voice.rate": (80, 450),  # espeak-ng accepts 80-450 words per minute (espeak-ng --help)
}
# Settings that hold a base URL (empty: not set).
URLS = frozenset({"agent.endpoint", "server.upstream"})


def is_url(text: str) -> bool:
    """An http(s) URL with a host, as a base URL for a server."""
    parsed = urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return False
    try:
        parsed.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        return False
    return True


def _checked(key: str, value: Any, where: str) -> Any:
    allowed = CHOICES.get(key)
    if allowed is not None and value not in allowed:
        raise SettingsError(f"{where} must be one of {', '.join(allowed)}, not {value!r}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = RANGES.get(key, (0, None))
        default_range = key not in RANGES
        whole = isinstance(value, int)
        if (default_range and value <= 0) or value < low or (high is not None and value > high):
            if high is not None:
                wanted = f"from {low:g} to {high:g}"
            elif default_range:
                wanted = "of 1 or more" if whole else "above 0"
            else:
                wanted = f"of {low:g} or more"
            kind = "a whole number" if whole else "a number"
            raise SettingsError(f"{where} must be {kind} {wanted}, not {value:g}")
    if key in URLS and value and not is_url(str(value)):
        raise SettingsError(
            f"{where} must be a URL like http://127.0.0.1:8888 (or empty), not {value!r}"
        )
    return value


def checked_value(key: str, value: Any, where: str) -> Any:
    """`value` for setting `key` (section.name) as the settings take it, or a SettingsError
    naming `where` it came from (a command-line flag that overrides the setting, say)."""
    section_name, _, name = key.partition(".")
    section = getattr(Settings(), section_name)
    return _checked(key, _coerce(value, getattr(section, name), where), where)


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path} is not valid TOML ({exc}); fix or delete it") from exc


def _line_of(path: Path, section: str, name: str) -> int | None:
    """The line of `name` in `[section]` of a TOML file (or `section.name =`), for messages."""
    current = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            current = stripped.strip("[] ")
            continue
        key = stripped.partition("=")[0].strip().strip('"')
        if (current == section and key == name) or (not current and key == f"{section}.{name}"):
            return number
    return None


def _place(key: str, path: Path) -> str:
    """`path line N` where `key` is written in the file, or just the path."""
    section, _, name = key.partition(".")
    line = _line_of(path, section, name)
    return f"{path} line {line}" if line is not None else str(path)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Defaults, then config.toml, then `DESKLOOP_SECTION_KEY` environment variables."""
    env = os.environ if environ is None else environ
    config_path = paths().config_file
    data = _read_file(config_path)
    settings = Settings()
    known = set(setting_keys())
    for section_name, table in data.items():
        if section_name not in Settings.SECTIONS:
            raise SettingsError(
                f"unknown section [{section_name}] in {config_path}; "
                f"the sections are {', '.join(Settings.SECTIONS)}"
            )
        if not isinstance(table, dict):
            raise SettingsError(f"[{section_name}] in {config_path} must be a table")
        for name in table:
            if f"{section_name}.{name}" not in known:
                key = f"{section_name}.{name}"
                raise _unknown_key(key, f" in {_place(key, config_path)}")
    for section_name in Settings.SECTIONS:
        section = getattr(settings, section_name)
        from_file = data.get(section_name, {})
        for f in fields(section):
            current = getattr(section, f.name)
            key = f"{section_name}.{f.name}"
            if f.name in from_file:
                where = f"{key} in {_place(key, config_path)}"
                try:
                    value = _checked(key, _coerce(from_file[f.name], current, where), where)
                except SettingsError as exc:
                    raise SettingsError(
                        f"{exc}; change it with `deskloop config set {key} VALUE` "
                        f"or `deskloop config unset {key}`"
                    ) from exc
                setattr(section, f.name, value)
            env_name = f"DESKLOOP_{section_name}_{f.name}".upper()
            if env_name in env:
                value = _coerce(env[env_name], current, env_name)
                setattr(section, f.name, _checked(key, value, env_name))
    return settings


def setting_keys() -> list[str]:
    """Every settable key as `section.name`."""
    settings = Settings()
    return [
        f"{name}.{f.name}" for name in Settings.SECTIONS for f in fields(getattr(settings, name))
    ]


def _unknown_key(key: str, where: str = "") -> SettingsError:
    close = difflib.get_close_matches(key, setting_keys(), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return SettingsError(
        f"unknown setting {key!r}{where}; {hint}`deskloop config get` lists every setting"
    )


def _split_key(key: str) -> tuple[str, str]:
    section, _, name = key.partition(".")
    if key not in setting_keys():
        raise _unknown_key(key)
    return section, name


def get_setting(key: str) -> Any:
    section, name = _split_key(key)
    return getattr(getattr(load_settings(), section), name)


def set_setting(key: str, raw_value: Any, *, folders: Paths | None = None) -> Any:
    """Write one key to config.toml, keeping every other line's value; returns the new value."""
    section, name = _split_key(key)
    default = getattr(getattr(Settings(), section), name)
    value = _checked(key, _coerce(raw_value, default, key), key)
    config_path = (folders or paths()).config_file
    data = _read_file(config_path)
    table = data.setdefault(section, {})
    if not isinstance(table, dict):
        raise SettingsError(f"[{section}] in {config_path} must be a table; fix or delete it")
    table[name] = value
    _write_file(config_path, data)
    return value


def _write_file(config_path: Path, data: dict[str, Any]) -> None:
    config_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = config_path.with_suffix(".toml.tmp")
    tmp.write_text(tomli_w.dumps(data), encoding="utf-8")
    tmp.replace(config_path)


def unset_setting(key: str) -> bool:
    """Remove one key from config.toml so its default applies; False when it was not there."""
    section, name = _split_key(key)
    config_path = paths().config_file
    data = _read_file(config_path)
    table = data.get(section)
    if not isinstance(table, dict) or name not in table:
        return False
    del table[name]
    if not table:
        del data[section]
    _write_file(config_path, data)
    return True


def default_setting(key: str) -> Any:
    section, name = _split_key(key)
    return getattr(getattr(Settings(), section), name)
