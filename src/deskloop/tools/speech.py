"""`speak_response`: the answer read aloud by the platform's own voice, on this machine.

One small interface over two programs: espeak-ng on Linux, `say` on macOS. Both take a
rate in words per minute (`voice.rate`), speak to the speakers, or write a WAV file.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from deskloop.tools.contract import (
    BadToolArguments,
    TimeoutTier,
    Tool,
    ToolContext,
    ToolFailed,
    ToolFamily,
    ToolInput,
    ToolOutput,
)

ROUTING = "Spoken answers: speak_response reads your short final answer aloud when voice is on."
MAX_CHARACTERS = 4000


class SpeechUnavailable(ToolFailed):
    """No voice program, or it could not reach the speakers; the message says what to install."""


@dataclass(frozen=True)
class Voice:
    """A text-to-speech program: its command line to speak, or to write a WAV file."""

    program: str

    def command(self, rate: int, wav: Path | None) -> list[str]:
        """The command line; the text goes on stdin, so no word of it is read as an option."""
        if Path(self.program).name == "say":
            # With no text argument `say` reads stdin; WAV needs the data format named.
            out = ["-o", str(wav), "--data-format=LEI16@22050"] if wav else []
            return [self.program, "-r", str(rate), *out]
        out = ["-w", str(wav)] if wav else []
        return [self.program, "-s", str(rate), *out, "--stdin"]

    async def speak(self, text: str, rate: int, wav: Path | None = None) -> None:
        """Speak `text` (or write it to `wav`) and return when done."""
        process = await asyncio.create_subprocess_exec(
            *self.command(rate, wav),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await process.communicate(text.encode())
        except asyncio.CancelledError:
            process.kill()
            await process.wait()
            raise
        said = err.decode(errors="replace")
        # espeak-ng exits 0 even when ALSA has no sound card; it says so on stderr.
        if process.returncode != 0 or "error:" in said.lower() or "cannot find card" in said:
            last = [line for line in said.splitlines() if line.strip()][-1:] or ["no detail"]
            raise SpeechUnavailable(
                f"{Path(self.program).name} could not play the speech ({last[0].strip()}); "
                "this machine has no working sound output, so give the answer as text"
            )


def platform_voice() -> Voice:
    """The voice of this platform; refuses with the install command when it is missing."""
    name = "say" if sys.platform == "darwin" else "espeak-ng"
    program = shutil.which(name)
    if program is None:
        raise SpeechUnavailable(
            "no text-to-speech program: install espeak-ng (`apt-get install espeak-ng`)"
        )
    return Voice(program)


async def speak_response(tool_input: ToolInput, context: ToolContext) -> ToolOutput:
    voice_settings = context.settings.voice
    if not voice_settings.enabled:
        raise BadToolArguments(
            "voice is off, so nothing was spoken; give the answer as text (the user can turn "
            "voice on with set_user_preferences or `deskloop config set voice.enabled true`)"
        )
    text = " ".join(str(tool_input["text"]).split())[:MAX_CHARACTERS]
    if not text:
        raise BadToolArguments("text is empty; give the words to speak")
    await platform_voice().speak(text, voice_settings.rate)
    return f"spoke {len(text.split())} words"


def build_speech_tools(context: ToolContext) -> list[Tool]:
    return [
        Tool(
            "speak_response",
            "Say a short answer aloud (when voice is on).",
            {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
                "additionalProperties": False,
            },
            "act",
            TimeoutTier.OTHER,
            speak_response,
        )
    ]


SPEECH_FAMILY = ToolFamily("speech", ROUTING, build_speech_tools)
