"""The terminal as input: reading a line without blocking the loop, and asking permission."""

from __future__ import annotations

import asyncio
import json
import sys
import threading

from deskloop.tools import Answer, PermissionRequest


async def read_line(prompt: str) -> str | None:
    """One line of stdin (None at end of input), read in a daemon thread.

    A daemon thread, not `asyncio.to_thread`: the default executor is joined when the
    loop closes, so a session ended by Ctrl-C would hang until the user pressed Enter.
    """
    loop = asyncio.get_running_loop()
    line: asyncio.Future[str] = loop.create_future()

    def deliver(text: str) -> None:
        if not line.done():
            line.set_result(text)

    def read_one() -> None:
        text = sys.stdin.readline()
        loop.call_soon_threadsafe(deliver, text)

    if sys.stdin.isatty():
        print(prompt, end="", flush=True)
    threading.Thread(target=read_one, daemon=True).start()
    text = await line
    return text.rstrip("\n") if text else None


def permission_prompt(request: PermissionRequest) -> str:
    """The question as the terminal asks it, quoting untrusted text the session read before."""
    arguments = json.dumps(request.input, ensure_ascii=False)
    if len(arguments) > 400:
        arguments = arguments[:400] + "…"
    lines = [f"\nThe agent wants to run {request.tool_name} ({request.risk}) with {arguments}"]
    if request.summary:
        lines.append(f"  {request.summary}")
    source = request.untrusted_source
    if source is None:
        lines.append("Allow? [y]es / [n]o / [a]lways this session: ")
    else:
        lines += [
            f"Before this, it read text from {source.tool_name} ({source.origin}) that is not "
            "from you and may have told it to:",
            f"  {source.quote!r}",
            "Allow? [y]es / [n]o: ",
        ]
    return "\n".join(lines)


async def ask_in_terminal(request: PermissionRequest) -> Answer:
    """The terminal's `Asker`: ask on stdin; with no terminal to ask on, the answer is no."""
    if not sys.stdin.isatty():
        print(
            f"deskloop: refused {request.tool_name} ({request.risk}): no terminal to ask on; "
            f"allow with `deskloop config set agent.policy_{request.risk} auto`",
            file=sys.stderr,
        )
        return Answer.DENY
    reply = ((await read_line(permission_prompt(request))) or "").strip().lower()
    if reply in ("a", "always") and request.untrusted_source is None:
        return Answer.ALLOW_FOR_SESSION
    if reply in ("y", "yes"):
        return Answer.ALLOW_ONCE
    return Answer.DENY
