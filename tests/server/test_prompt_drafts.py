"""Prompt drafts through the server (issue 21), on a scripted model that goes through the
shared decode loop: for every format family's grammar, tool inputs that copy values from
the conversation (an element id, a path, a text to type) and a text answer that quotes it
come out the same, whole and streamed, with drafts on and off; drafted tokens are taken
and the forward passes drop."""

from __future__ import annotations

from typing import Any

import pytest

from deskloop.engines.base import DecodeStats
from deskloop.server.protocol import Tool
from deskloop.server.tool_formats import TOOL_FORMATS, tool_format
from tests.engines.drafting import ScriptedModelEngine
from tests.tool_formats.helpers import CLICK, TYPE_TEXT

from .helpers import client_for, scripted_app
from .test_fast_forward import content_of, content_of_stream

FAMILIES = sorted(TOOL_FORMATS)
OPEN_FILE = Tool(
    name="open_file",
    description="Open a file in its app.",
    input_schema={
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "required": ["path"],
        "additionalProperties": False,
    },
)
TOOL_SPECS = [tool.model_dump(mode="json") for tool in (CLICK, TYPE_TEXT, OPEN_FILE)]
SCREEN = (
    "Screen:\n"
    'e1041 btn "Archive"\ne1042 txt "Subject" value ""\n'
    'e1043 lbl "Status: draft saved at 10:42 by Ada Lovelace"\n'
)
TYPED = "Invoice 2026-311 received from Lisbon office"
PATH = "/home/ada/Mail/invoices/2026/invoice-311.pdf"
CASES = [
    ("click", {"element_id": "e1042"}, "Click the Subject field."),
    ("type_text", {"text": TYPED, "submit": True}, f"Type '{TYPED}' and submit it."),
    ("open_file", {"path": PATH}, f"Open {PATH} please."),
]
QUOTE = "The status line says: Status: draft saved at 10:42 by Ada Lovelace."


async def ask(
    script: str, family: str, text: str, *, drafts: bool, stream: bool, tools: bool = True
) -> tuple[Any, DecodeStats | None]:
    engine = ScriptedModelEngine(script)
    engine.prompt_drafts = drafts
    app, _ = scripted_app(engine, tool_format=family)
    body: dict[str, Any] = {
        "model": "claude-opus-5-5",
        "max_tokens": 200,
        "temperature": 0,
        "messages": [{"role": "user", "content": SCREEN + text}],
        "stream": stream,
    }
    if tools:
        body.update(tools=TOOL_SPECS, tool_choice={"type": "any"})
    async with client_for(app) as client:
        response = await client.post("/v1/messages", json=body)
    assert response.status_code == 200, response.text
    if stream:
        return content_of_stream(response.text), engine.last_decode
    message = response.json()
    return (content_of(message), message["stop_reason"]), engine.last_decode


@pytest.mark.parametrize("family", FAMILIES)
async def test_copied_tool_inputs_are_the_same_with_drafts_on_and_off(family: str) -> None:
    for name, arguments, text in CASES:
        script = tool_format(family).write_call(name, arguments)
        for stream in (False, True):
            off, off_stats = await ask(script, family, text, drafts=False, stream=stream)
            on, on_stats = await ask(script, family, text, drafts=True, stream=stream)
            assert on == off, (family, name, stream, off, on)
            assert off[0][-1][0] == "tool_use" and off[0][-1][2:] == [name, arguments], off
            assert on_stats is not None and off_stats is not None
            assert on_stats.accepted > 0, (family, name, on_stats)
            assert on_stats.passes < off_stats.passes, (family, name, off_stats, on_stats)


async def test_a_long_copied_value_costs_far_fewer_passes() -> None:
    script = tool_format("hermes").write_call("open_file", {"path": PATH})
    _, off = await ask(script, "hermes", CASES[2][2], drafts=False, stream=False)
    _, on = await ask(script, "hermes", CASES[2][2], drafts=True, stream=False)
    assert off is not None and on is not None and on.tokens == off.tokens
    # Most of the 44-byte path (a token a byte) is taken from drafts, a pass for several
    # bytes; the call's name and the rest, the model's to choose, are a pass each either way.
    assert on.accepted >= len(PATH) / 2, on
    assert on.passes <= off.passes / 3, (off, on)


async def test_a_text_answer_that_quotes_the_prompt_is_the_same() -> None:
    text = "What does the status line say?"
    for stream in (False, True):
        off, off_stats = await ask(QUOTE, "generic", text, drafts=False, stream=stream, tools=False)
        on, on_stats = await ask(QUOTE, "generic", text, drafts=True, stream=stream, tools=False)
        assert on == off and off[0] == [["text", QUOTE, None, None]], (off, on)
        assert on_stats is not None and off_stats is not None
        assert on_stats.accepted > 20 and on_stats.passes < off_stats.passes / 2, on_stats
