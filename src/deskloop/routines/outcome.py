"""What a finished run amounts to: ok, error, timeout or empty, read back from its session.

A session that neither did anything (no tool call succeeded) nor said anything is
`empty`, never `ok`: the reference recorded such runs as successes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from deskloop.store import RunRecord, RunResult, RunStatus, Store

OUTPUT_LIMIT_CHARS = 8000
FINISH_TOOL_NAME = "finish"  # deskloop.agent.finish: its summary is what the session said
REFUSED_STATUS = "denied"  # the dispatcher's status for a call the policy refused
ENDED_WELL = "end_turn"


@dataclass(frozen=True)
class SessionEnd:
    """How the child session ended: the loop's end reason and message, or why it did not."""

    reason: str
    message: str
    timed_out: bool = False
    # When the model's first output reached the session (Unix time), if it did.
    first_output_at: float | None = None

    @classmethod
    def from_child(
        cls, returncode: int | None, stdout: bytes, stderr: bytes, tail_lines: int
    ) -> SessionEnd:
        """The child's JSON lines on stdout, else its exit code and the tail of stderr."""
        said: dict[str, object] = {}
        for line in stdout.decode("utf-8", "replace").splitlines():
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(data, dict):
                said.update(data)
        first = said.get("first_output_at")
        first_at = float(first) if isinstance(first, int | float) else None
        if "reason" in said:
            return cls(str(said["reason"]), str(said.get("message", "")), False, first_at)
        tail = "\n".join(stderr.decode("utf-8", "replace").strip().splitlines()[-tail_lines:])
        message = f"the session process exited with code {returncode}"
        return cls("crashed", f"{message}: {tail}" if tail else message, False, first_at)


def judge_run(store: Store, run: RunRecord, end: SessionEnd, baseline_turn: int) -> RunResult:
    """The run's status, output, tokens and refused tools, from what its session stored.

    Only what happened after the run started counts (a `resume` routine's session holds
    earlier runs); `baseline_turn` is the session's last turn before this run.
    """
    if run.session_id is None:
        return RunResult("timeout" if end.timed_out else "error", end.message)
    messages = [m for m in store.messages(run.session_id) if m.created_at >= run.started_at]
    calls = [c for c in store.tool_calls(run.session_id) if c.started_at >= run.started_at]
    usage = [u for u in store.usage(run.session_id) if u.turn > baseline_turn]
    said: list[str] = []
    for message in messages:
        if message.role != "assistant":
            continue
        for block in message.content:
            if block.get("type") == "text" and str(block.get("text", "")).strip():
                said.append(str(block["text"]).strip())
            if block.get("type") == "tool_use" and block.get("name") == FINISH_TOOL_NAME:
                summary = block.get("input", {}).get("summary", "")
                if isinstance(summary, str) and summary.strip():
                    said.append(summary.strip())
    did = any(c.status == "ok" and c.name != FINISH_TOOL_NAME for c in calls)
    refused = tuple(dict.fromkeys(c.name for c in calls if c.status == REFUSED_STATUS))
    output = "\n".join(said)
    if refused:
        output += f"\nrefused tools: {', '.join(refused)}"
    status: RunStatus
    if end.timed_out:
        status = "timeout"
        output = f"{end.message}\n{output}"
    elif end.reason == ENDED_WELL:
        status = "ok" if (did or said) else "empty"
        if status == "empty":
            output = f"the session ended without doing or saying anything{output}"
    else:
        status = "error"
        output = f"{end.message}\n{output}"
    return RunResult(
        status,
        output.strip()[:OUTPUT_LIMIT_CHARS],
        sum(u.input_tokens for u in usage),
        sum(u.output_tokens for u in usage),
        refused,
    )
