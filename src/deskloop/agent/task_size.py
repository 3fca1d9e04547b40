"""A task too long for the model's context window is refused before a session is created."""

from __future__ import annotations

from typing import Any

import anthropic

from deskloop.errors import DeskloopError

# Room the system prompt and a lean tool set take at least (the embedded model's prompt
# with its routed tools measured ~1,500 tokens; issue 18 saw ~3,200 with every tool).
PROMPT_ROOM_TOKENS = 1500


class TaskTooLong(DeskloopError):
    """The task alone fills the model's window; the message says how to go on."""

    status_code = 413


def context_window(health: dict[str, Any] | None, embedded: bool, configured: int) -> int | None:
    """The endpoint's window: what its /health says, else `server.context_window` for the
    embedded server; None when unknown (another server: it answers for itself)."""
    said = (health or {}).get("context_window")
    if isinstance(said, int) and said > 0:
        return said
    return configured if embedded else None


async def check_task_fits(
    client: anthropic.AsyncAnthropic, model: str, task: str, window: int | None
) -> None:
    """Raise `TaskTooLong` when `task` leaves no room for the prompt in `window` tokens."""
    if window is None:
        return
    room = window - PROMPT_ROOM_TOKENS
    if len(task) < room:  # never more tokens than characters: no need to ask
        return
    try:
        counted = await client.with_options(max_retries=0).messages.count_tokens(
            model=model, messages=[{"role": "user", "content": task}]
        )
    except anthropic.APIError:
        tokens = len(task) // 4  # ~4 characters a token in English text
    else:
        tokens = counted.input_tokens
    if tokens < room:
        return
    raise TaskTooLong(
        f"the task is {len(task):,} characters ({tokens:,} tokens) and the model's context "
        f"window is {window:,} tokens, with about {PROMPT_ROOM_TOKENS:,} of them for "
        "deskloop's instructions and tools: shorten the task (put long text in a file and "
        "name the file), or use a model server with a larger window (`deskloop serve "
        "--context-window 32768`, or `deskloop config set server.context_window 32768` for "
        "the embedded model)"
    )
