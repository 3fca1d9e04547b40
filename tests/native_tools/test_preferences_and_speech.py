"""Preferences are settings the CLI reads back; speech is real espeak-ng audio."""

from __future__ import annotations

import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from deskloop.settings import load_settings
from deskloop.tools import BadToolArguments, Tool, ToolContext, ToolFailed
from deskloop.tools.preferences import build_preference_tools
from deskloop.tools.speech import Voice, build_speech_tools, platform_voice


def _tools(context: ToolContext) -> dict[str, Tool]:
    return {
        tool.name: tool for tool in [*build_preference_tools(context), *build_speech_tools(context)]
    }


async def test_preferences_are_written_where_deskloop_config_reads_them(
    context: ToolContext,
) -> None:
    tools = _tools(context)
    said = await tools["set_user_preferences"].run(
        {"name": "Ada", "language": "French", "voice": True, "voice_rate": 150}, context
    )
    assert said == (
        "saved: agent.user_name = 'Ada', agent.language = 'French', voice.enabled = True, "
        "voice.rate = 150"
    )
    shown = subprocess.run(
        [sys.executable, "-m", "deskloop", "config", "get", "voice.rate"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == "150"
    settings = load_settings()
    assert (settings.agent.user_name, settings.agent.language, settings.voice.enabled) == (
        "Ada",
        "French",
        True,
    )
    assert context.settings.voice.rate == 150  # the running session sees it too
    done = str(await tools["complete_onboarding"].run({}, context))
    assert done == "onboarding complete; name: Ada; language: French; voice: on at 150 words/min"
    assert load_settings().agent.onboarded is True


async def test_an_out_of_range_rate_is_refused_and_nothing_is_written(context: ToolContext) -> None:
    with pytest.raises(BadToolArguments, match="from 80 to 450"):
        await _tools(context)["set_user_preferences"].run({"voice_rate": 20}, context)
    assert load_settings().voice.rate == 175
    assert not context.paths.config_file.exists()


needs_espeak = pytest.mark.skipif(
    sys.platform != "darwin" and shutil.which("espeak-ng") is None,
    reason="espeak-ng is installed by scripts/debian-packages.txt",
)


@needs_espeak
async def test_the_platform_voice_writes_audio_of_plausible_length(tmp_path: Path) -> None:
    voice = platform_voice()
    sentence = "The report is saved in your Documents folder, and the meeting moved to three."
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    await voice.speak("Done.", 175, short)
    await voice.speak(sentence, 175, long)
    await voice.speak(sentence, 350, tmp_path / "fast.wav")

    def seconds(path: Path) -> float:
        with wave.open(str(path)) as audio:
            return audio.getnframes() / audio.getframerate()

    # 14 words at 175 words/min is about 4.8 s of speech; "Done." well under a second or two.
    assert 3.0 < seconds(long) < 8.0
    assert 0.2 < seconds(short) < 2.0
    assert seconds(tmp_path / "fast.wav") < seconds(long) * 0.75
    with wave.open(str(long)) as audio:
        frames = audio.readframes(audio.getnframes())
    assert frames.count(0) < len(frames) * 0.9  # not silence


async def test_speak_response_is_refused_while_voice_is_off(context: ToolContext) -> None:
    with pytest.raises(BadToolArguments, match="voice is off"):
        await _tools(context)["speak_response"].run({"text": "hello"}, context)


@needs_espeak
async def test_speak_response_without_a_sound_card_says_so(
    context: ToolContext, tmp_path: Path
) -> None:
    if (
        Path("/proc/asound/cards").is_file()
        and "no soundcards" not in Path("/proc/asound/cards").read_text()
    ):
        pytest.skip("this machine has a sound card: the tool would really speak")
    context.settings.voice.enabled = True
    with pytest.raises(ToolFailed, match="no working sound output"):
        await _tools(context)["speak_response"].run({"text": "hello"}, context)


def test_the_voice_reads_its_text_from_stdin_so_words_are_never_options() -> None:
    assert Voice("/usr/bin/espeak-ng").command(175, None) == [
        "/usr/bin/espeak-ng",
        "-s",
        "175",
        "--stdin",
    ]
    assert Voice("/usr/bin/say").command(200, Path("a.wav")) == [
        "/usr/bin/say",
        "-r",
        "200",
        "-o",
        "a.wav",
        "--data-format=LEI16@22050",
    ]
