"""`deskloop bench second_run`: a second `deskloop run`'s first token, resident server or not.

Two `deskloop run` of the same kind of task in a row on the embedded model (real
llama.cpp), every tool family on, so the prompt (system prompt and tool schemas) is what a
person's run sends. Timed on the second run:
- from the command's start to the first token on its stdout (what a person waits), and
- from its turn's start (the session log's turn_start) to that token: the model's wait.
Resident: the first run started the resident server, the second reuses it and its prefix
cache. Without: the server is stopped between the runs, so the second starts its own, as
every run did before the resident server (load, then the whole prompt prefilled).
Target (issue 18): resident <= 0.3x of without, the prefix cached.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

TARGET_RATIO = 0.3
TASKS = ("Say hello to me in one short sentence.", "Say goodbye to me in one short sentence.")


def deskloop(*args: str) -> list[str]:
    return [sys.executable, "-m", "deskloop", *args]


def environment(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("ANTHROPIC_BASE_URL", "DESKLOOP_AGENT_ENDPOINT"):
        env.pop(name, None)
    env.update(
        DESKLOOP_HOME=str(home),
        PYTHONUNBUFFERED="1",
        DESKLOOP_AGENT_OBSERVE_FIRST="false",  # no desktop needed: time the model
        DESKLOOP_AGENT_TOOL_CALLS="free",  # a text answer streams, so its first token shows
        DESKLOOP_AGENT_MAX_TURNS="1",
        DESKLOOP_AGENT_MAX_TOKENS_PER_TURN="8",
        # Every family offered, as a chat or a large model gets them: the prompt the issue
        # measured (about 3,200 tokens); "task" routing would offer a greeting almost none.
        DESKLOOP_AGENT_TOOL_ROUTING="all",
        DESKLOOP_SERVER_IDLE_MINUTES="15",
    )
    return env


@dataclass(frozen=True)
class RunTiming:
    from_command_s: float  # command start to first token
    from_turn_s: float  # turn start to first token
    prompt_tokens: int
    cached_tokens: int


def timed_run(env: dict[str, str], task: str) -> RunTiming:
    started = time.time()
    process = subprocess.Popen(
        deskloop("run", task, "--no-mcp", "all"), env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    # Every chunk of stdout with when it came: notices come first, then the model's text.
    chunks: list[tuple[float, bytes]] = []
    while chunk := os.read(process.stdout.fileno(), 4096):
        chunks.append((time.time(), chunk))
    _, stderr = process.communicate(timeout=900)
    session_id, turn_at = _turn_start(Path(env["DESKLOOP_HOME"]))
    prompt, cached, answer = _usage(session_id)
    first_token_at = _when_shown(chunks, answer)
    if first_token_at is None:
        raise SystemExit(f"`deskloop run` wrote no answer:\n{stderr.decode()}")
    return RunTiming(first_token_at - started, first_token_at - turn_at, prompt, cached)


def _when_shown(chunks: list[tuple[float, bytes]], answer: str) -> float | None:
    """When the first bytes of the model's answer reached stdout."""
    start = answer.strip()[:8].encode()
    if not start:
        return None
    stream = b"".join(chunk for _, chunk in chunks)
    position = stream.find(start)
    if position < 0:
        return None
    seen = 0
    for at, chunk in chunks:
        seen += len(chunk)
        if seen > position:
            return at
    return None


def _turn_start(home: Path) -> tuple[int, float]:
    """The newest session's id and when its first turn started (its JSONL log)."""
    logs = sorted((home / "data" / "logs").glob("session-*.jsonl"),
                  key=lambda p: int(p.stem.split("-")[1]))  # fmt: skip
    newest = logs[-1]
    for line in newest.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "turn_start":
            return int(newest.stem.split("-")[1]), float(event["time"])
    raise SystemExit(f"no turn_start in {newest}")


def _usage(session_id: int) -> tuple[int, int, str]:
    """The first turn's prompt tokens and cached ones, and the answer's text."""
    from deskloop.store import Store

    with Store.open() as store:
        usage = store.usage(session_id)
        answer = next(
            (block.get("text", "") for message in store.messages(session_id)
             if message.role == "assistant" for block in message.content
             if block.get("type") == "text"),
            "",
        )  # fmt: skip
    tokens = (usage[0].input_tokens, usage[0].cache_read_tokens) if usage else (0, 0)
    return (*tokens, answer)


def stop_resident(env: dict[str, str]) -> None:
    code = "from deskloop.agent.resident_server import stop_resident_server as s; s()"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def second_run(env: dict[str, str], resident: bool) -> RunTiming:
    timed_run(env, TASKS[0])
    if not resident:
        stop_resident(env)
    timing = timed_run(env, TASKS[1])
    stop_resident(env)
    return timing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=1, help="pairs of runs for each side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env = environment(Path(folder))
        os.environ["DESKLOOP_HOME"] = folder  # for reading the store here
        without = [second_run(env, resident=False) for _ in range(args.pairs)]
        resident = [second_run(env, resident=True) for _ in range(args.pairs)]
    print(f"second `deskloop run`, embedded model (llama.cpp), every tool family, "
          f"median of {args.pairs}")  # fmt: skip
    for name, runs in (("without the resident server", without), ("resident server", resident)):
        command_s = statistics.median(r.from_command_s for r in runs)
        turn_s = statistics.median(r.from_turn_s for r in runs)
        print(f"  {name:28} first token {command_s:6.2f} s after the command, {turn_s:6.2f} s "
              f"after the turn; prompt {runs[0].prompt_tokens} tokens, "
              f"{runs[0].cached_tokens} cached")  # fmt: skip
    ratio = statistics.median(r.from_command_s for r in resident) / statistics.median(
        r.from_command_s for r in without
    )
    turn_ratio = statistics.median(r.from_turn_s for r in resident) / statistics.median(
        r.from_turn_s for r in without
    )
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(f"  ratio resident/without: {ratio:.2f}x from the command ({verdict} <= "
          f"{TARGET_RATIO:g}x), {turn_ratio:.2f}x from the turn's start")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
