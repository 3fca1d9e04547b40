"""The tool-call half of `deskloop bench upstream`: does the tool contract hold through it?

For each upstream tried, `deskloop serve --engine openai` runs in front of it. Small screen
tasks (an observation with element ids, a `click` and a `type_text` whose ids are grounded
enums) are asked forced (`tool_choice` any) and act-now auto, through deskloop and of the
upstream alone (its own `tool_choice`, the enum in its tools, as a client would ask it).
A call is valid when it names a declared tool and its input validates (ids on screen only).
The time per forced call through deskloop's constraint is set against the upstream's own
forced call, alternating in the same run.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema

SYSTEM = "You operate a desktop through tools. Do the task with one tool call."


@dataclass(frozen=True)
class Task:
    words: str
    elements: tuple[tuple[str, str], ...]  # (id, what the observation says of it)
    text_ids: tuple[str, ...]
    right: tuple[str, dict[str, Any]]  # the call a person would make

    def prompt(self) -> str:
        seen = "\n".join(f"[{element}] {said}" for element, said in self.elements)
        return f"{self.words}\n\nOn screen:\n{seen}"


TASKS = (
    Task("Select Page 2.", (("e11", "tab 'Page 1' (selected)"), ("e12", "tab 'Page 2'"),
         ("e13", "push button 'OK'")), (), ("click", {"id": "e12"})),
    Task("Type hello into the search field.", (("e21", "text 'Search'"),
         ("e22", "push button 'Go'")), ("e21",), ("type_text", {"id": "e21", "text": "hello"})),
    Task("Press the OK button.", (("e31", "push button 'Cancel'"), ("e32", "push button 'OK'")),
         (), ("click", {"id": "e32"})),
    Task("Check the Bold box.", (("e41", "check box 'Italic'"), ("e42", "check box 'Bold'")),
         (), ("click", {"id": "e42"})),
    Task("Open the File menu.", (("e51", "menu 'File'"), ("e52", "menu 'Edit'")), (),
         ("click", {"id": "e51"})),
    Task("Write buy milk in the note.", (("e61", "text 'Note'"), ("e62", "push button 'Save'")),
         ("e61",), ("type_text", {"id": "e61", "text": "buy milk"})),
)  # fmt: skip


def tools_for(task: Task, *, grounded: bool) -> list[dict[str, Any]]:
    """The screen tools with this turn's ids as enums (marked grounded for deskloop)."""

    def ids(values: tuple[str, ...]) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "enum": list(values)}
        if grounded:
            schema["x-grounded"] = True
        return {**schema, "description": "The element's id, from the screen."}

    every = tuple(element for element, _ in task.elements)
    return [
        {"name": "click", "description": "Click an element.",
         "input_schema": {"type": "object", "properties": {"id": ids(every)},
                          "required": ["id"]}},
        {"name": "type_text", "description": "Type text into a text field.",
         "input_schema": {"type": "object",
                          "properties": {"id": ids(task.text_ids or every),
                                         "text": {"type": "string"}},
                          "required": ["id", "text"]}},
    ]  # fmt: skip


def valid(task: Task, name: str, arguments: Any) -> bool:
    tools = {tool["name"]: tool for tool in tools_for(task, grounded=False)}
    tool = tools.get(name)
    return tool is not None and jsonschema.Draft202012Validator(tool["input_schema"]).is_valid(
        arguments
    )


@dataclass(frozen=True)
class Answer:
    seconds: float
    call: tuple[str, Any] | None
    tokens: int = 0  # output tokens, as the answer's usage says

    def is_valid(self, task: Task) -> bool:
        return self.call is not None and valid(task, *self.call)

    def is_right(self, task: Task) -> bool:
        return (
            self.call is not None
            and self.call[0] == task.right[0]
            and all(self.call[1].get(k) == v for k, v in task.right[1].items() if k == "id")
        )


def ask_deskloop(client: httpx.Client, task: Task, forced: bool, max_tokens: int) -> Answer:
    body: dict[str, Any] = {
        "model": "claude-opus-5-5", "max_tokens": max_tokens, "temperature": 0,
        "system": SYSTEM, "messages": [{"role": "user", "content": task.prompt()}],
        "tools": tools_for(task, grounded=True),
        "tool_choice": {"type": "any" if forced else "auto"},
    }  # fmt: skip
    started = time.perf_counter()
    answer = client.post("/v1/messages", json=body).json()
    seconds = time.perf_counter() - started
    calls = [(b["name"], b["input"]) for b in answer.get("content", []) if b["type"] == "tool_use"]
    tokens = int((answer.get("usage") or {}).get("output_tokens") or 0)
    return Answer(seconds, calls[0] if calls else None, tokens)


def ask_upstream(client: httpx.Client, task: Task, forced: bool, max_tokens: int) -> Answer:
    tools = [
        {"type": "function", "function": {"name": t["name"], "description": t["description"],
                                          "parameters": t["input_schema"]}}
        for t in tools_for(task, grounded=False)
    ]  # fmt: skip
    body = {
        "model": "m", "max_tokens": max_tokens, "temperature": 0, "tools": tools,
        "messages": [{"role": "system", "content": SYSTEM},
                     {"role": "user", "content": task.prompt()}],
        "tool_choice": "required" if forced else "auto",
    }  # fmt: skip
    started = time.perf_counter()
    answer = client.post("/v1/chat/completions", json=body).json()
    seconds = time.perf_counter() - started
    message = (answer.get("choices") or [{}])[0].get("message") or {}
    tokens = int((answer.get("usage") or {}).get("completion_tokens") or 0)
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except json.JSONDecodeError:
            arguments = None
        return Answer(seconds, (str(function.get("name")), arguments), tokens)
    return Answer(seconds, None, tokens)


@dataclass
class Row:
    upstream: str
    enforced_through: str = ""
    answers: dict[tuple[str, bool], list[tuple[Task, Answer]]] = field(default_factory=dict)

    def rate(self, route: str, forced: bool, right: bool = False) -> str:
        results = self.answers.get((route, forced), [])
        good = sum(a.is_right(t) if right else a.is_valid(t) for t, a in results)
        return f"{good}/{len(results)}"

    def latency_ratio(self) -> float:
        ours = [a.seconds for _, a in self.answers.get(("deskloop", True), [])]
        theirs = [a.seconds for _, a in self.answers.get(("upstream", True), [])]
        return statistics.median(ours) / statistics.median(theirs)

    def median(self, route: str) -> float:
        return statistics.median(a.seconds for _, a in self.answers.get((route, True), []))

    def per_token(self, route: str) -> float:
        """Median seconds per output token of the forced answers that wrote any."""
        answers = [a for _, a in self.answers.get((route, True), []) if a.tokens]
        return statistics.median(a.seconds / a.tokens for a in answers) if answers else 0.0

    def per_token_ratio(self) -> str:
        ours, theirs = self.per_token("deskloop"), self.per_token("upstream")
        return f"{ours / theirs:.2f}" if ours and theirs else "-"


def measure(upstream_url: str, deskloop_url: str, label: str, rounds: int, max_tokens: int) -> Row:
    """Every task, forced then auto, through deskloop and of the upstream alone, alternating."""
    row = Row(label)
    root = upstream_url.removesuffix("/v1")
    with (
        httpx.Client(base_url=deskloop_url, timeout=600) as ours,
        httpx.Client(base_url=root, timeout=600) as alone,
    ):
        health = ours.get("/health").json()
        row.enforced_through = str((health.get("upstream") or {}).get("forced_calls_through"))
        ask_deskloop(ours, TASKS[0], True, max_tokens)  # warm both prefix caches
        ask_upstream(alone, TASKS[0], True, max_tokens)
        for _ in range(rounds):
            for forced in (True, False):
                for task in TASKS:
                    row.answers.setdefault(("deskloop", forced), []).append(
                        (task, ask_deskloop(ours, task, forced, max_tokens))
                    )
                    row.answers.setdefault(("upstream", forced), []).append(
                        (task, ask_upstream(alone, task, forced, max_tokens))
                    )
    return row


def print_rows(rows: list[Row]) -> None:
    print("\ntool calls (valid = declared tool, input valid, ids on screen only; right = the id")
    print("a person would pick). forced = tool_choice any; latency = median forced call")
    print("through deskloop's constraint / the upstream's own tool_choice, same run; per token:")
    print("the same, per output token (the upstream alone often writes text to max_tokens):")
    header = ("upstream", "constraint", "forced valid: deskloop / alone", "auto valid: deskloop / alone",
              "forced right: deskloop / alone", "latency ratio (s / s)", "per token")  # fmt: skip
    print(" | ".join(header))
    for row in rows:
        print(" | ".join((
            row.upstream, row.enforced_through,
            f"{row.rate('deskloop', True)} / {row.rate('upstream', True)}",
            f"{row.rate('deskloop', False)} / {row.rate('upstream', False)}",
            f"{row.rate('deskloop', True, right=True)} / {row.rate('upstream', True, right=True)}",
            f"{row.latency_ratio():.2f} ({row.median('deskloop'):.2f} / {row.median('upstream'):.2f})",
            row.per_token_ratio(),
        )))  # fmt: skip
