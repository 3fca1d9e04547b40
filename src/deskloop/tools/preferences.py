"""`set_user_preferences` and `complete_onboarding`: the user's preferences are settings.

The tools write config.toml through the settings code, so `deskloop config`, the web UI
and the agent read one source of truth; a change applies from the next session.
"""

from __future__ import annotations

from typing import Any

from deskloop.settings import SettingsError, set_setting
from deskloop.tools.contract import (
    BadToolArguments,
    TimeoutTier,
    Tool,
    ToolContext,
    ToolFamily,
    ToolInput,
    ToolOutput,
)

ROUTING = "The user tells you their name, language or voice wishes: set_user_preferences."

# Tool argument -> the setting it writes.
PREFERENCES = {
    "name": "agent.user_name",
    "language": "agent.language",
    "voice": "voice.enabled",
    "voice_rate": "voice.rate",
}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "language": {"type": "string"},
        "voice": {"type": "boolean"},
        "voice_rate": {"type": "integer", "description": "words/min"},
    },
    "additionalProperties": False,
}


async def set_user_preferences(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
    if not tool_input:
        raise BadToolArguments(f"give at least one of {', '.join(PREFERENCES)}")
    written = []
    for argument, key in PREFERENCES.items():
        if argument not in tool_input:
            continue
        value = tool_input[argument]
        try:
            stored = set_setting(key, value, folders=context.paths)
        except SettingsError as exc:
            raise BadToolArguments(str(exc)) from exc
        section, name = key.split(".")
        # The running session sees the change too (speak_response reads voice.*).
        setattr(getattr(context.settings, section), name, stored)
        written.append(f"{key} = {stored!r}")
    return "saved: " + ", ".join(written)


async def complete_onboarding(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
    set_setting("agent.onboarded", True, folders=context.paths)
    context.settings.agent.onboarded = True
    agent, voice = context.settings.agent, context.settings.voice
    said = [
        f"name: {agent.user_name or '(not given)'}",
        f"language: {agent.language or '(the user writes in)'}",
        f"voice: {'on' if voice.enabled else 'off'} at {voice.rate} words/min",
    ]
    return "onboarding complete; " + "; ".join(said)


def build_preference_tools(context: ToolContext) -> list[Tool]:
    return [
        Tool(
            "set_user_preferences",
            "Save the user's name, language, voice on/off and speed.",
            SCHEMA,
            "act",
            TimeoutTier.INTERNAL,
            set_user_preferences,
        ),
        Tool(
            "complete_onboarding",
            "Mark first-run setup done.",
            {"type": "object", "properties": {}},
            "act",
            TimeoutTier.INTERNAL,
            complete_onboarding,
        ),
    ]


PREFERENCES_FAMILY = ToolFamily("preferences", ROUTING, build_preference_tools)
