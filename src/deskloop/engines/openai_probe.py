"""What an OpenAI-shaped upstream can enforce, found by asking it once.

Each constrained-output parameter is tried with a schema whose only valid answer is a
word no model writes unprompted; the parameter is honoured when exactly that comes back.
Unknown fields are ignored by vLLM, llama-server and Ollama, so ignoring is the common
failure, not a refusal. Ollama Cloud accepts `response_format` and ignores it (pydantic-ai's
Ollama docs), which is why the answer is checked rather than the status.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from deskloop.engines.base import UpstreamError
from deskloop.engines.upstream_http import CONNECT_TIMEOUT_S, api_root, new_client
from deskloop.settings import load_settings

log = logging.getLogger("deskloop.server")

# Probes answer in a dozen tokens; a model still loading (Ollama loads on first use) may not.
PROBE_TIMEOUT_S = 120.0
PROBE_WORD = "ok-31"
# `{"probe": "ok-31"}` is about 10 tokens, but a small model under llama.cpp's JSON grammar
# spends as many again on the newlines it allows (SmolLM2-135M: 23 tokens, seen here).
PROBE_TOKENS = 32
PROBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"probe": {"type": "string", "enum": [PROBE_WORD]}},
    "required": ["probe"],
    "additionalProperties": False,
}
PROBE_GRAMMAR = f'root ::= "{{\\"probe\\": \\"{PROBE_WORD}\\"}}"'
PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "report_number",
        "description": "Report a number.",
        "parameters": {
            "type": "object",
            "properties": {"number": {"type": "integer"}},
            "required": ["number"],
        },
    },
}

# The constrained-output parameters, in the order they are used: each server's own first
# (vLLM's, llama-server's, Ollama's native `format`), then OpenAI's portable
# `response_format`, whose `strict` rules and "experimental" compatibility layers vary,
# then `json_object` with a `schema` (llama-cpp-python's server takes only that form; it
# answers 500 to json_schema). `grammar` (GBNF) is reported but never used: deskloop
# writes JSON Schema.
CONSTRAINTS = (
    "structured_outputs",
    "guided_json",
    "json_schema",
    "format",
    "response_format",
    "json_object",
)
REPORTED_ONLY = ("grammar",)
# What is worth trying where a server says which it is; each try of an ignored parameter
# costs a short free generation (76 s for all of them with Qwen2.5-Coder-0.5B on 2 busy
# cores, measured here). Any other server gets every parameter but Ollama's `format`.
KINDS_BY_SERVER = {
    "vllm": ("structured_outputs", "guided_json", "response_format", "json_object"),
    "llama.cpp": ("json_schema", "response_format", "json_object", "grammar"),
    "ollama": ("format", "response_format", "json_object"),
}


def constrained_fields(
    kind: str, schema: dict[str, Any], name: str = "tool_call"
) -> dict[str, Any]:
    """The body fields that ask for output matching `schema` through parameter `kind`."""
    if kind == "structured_outputs":  # vLLM >= 0.10.2 (its structured outputs docs)
        return {"structured_outputs": {"json": schema}}
    if kind == "guided_json":  # vLLM before 0.12, where it was removed
        return {"guided_json": schema}
    if kind == "json_schema":  # llama.cpp's server
        return {"json_schema": schema}
    if kind == "response_format":
        # `strict` is OpenAI's; vLLM, llama-server, Ollama and LM Studio enforce either way.
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True},
            }
        }
    if kind == "json_object":  # llama-cpp-python's server, llama-server too
        return {"response_format": {"type": "json_object", "schema": schema}}
    if kind == "format":  # Ollama's native /api/chat
        return {"format": schema}
    raise ValueError(f"unknown constraint {kind!r}")


@dataclass(frozen=True)
class Enforcement:
    """What the upstream was found to honour, for forced calls and for /health."""

    upstream: str
    server: str = ""  # vllm, llama.cpp, ollama; empty when it did not say
    honoured: tuple[str, ...] = ()  # constrained-output parameters, in the order used
    ignored: tuple[str, ...] = ()
    # Whether `tool_choice: "required"` came back as `tool_calls` (None: not tried).
    native_tool_calls: bool | None = None
    # Whether its chat template puts the tools in the prompt (None: it reports no usage).
    # llama-server drops them for templates without tool support (SmolLM2's): the model
    # then writes a forced call from the constraint alone, without the tools' descriptions.
    shows_tools: bool | None = None
    error: str = ""  # why the probe could not finish
    seconds: float = 0.0
    probed: bool = True

    @property
    def constraint(self) -> str | None:
        """The parameter forced calls go through, or None when the upstream honours none."""
        return next((kind for kind in self.honoured if kind not in REPORTED_ONLY), None)

    def to_json(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "upstream": self.upstream,
            "server": self.server or "unknown",
            "enforces": list(self.honoured),
            "ignores": list(self.ignored),
            "forced_calls_through": self.constraint,
            "native_tool_calls": self.native_tool_calls,
            "template_shows_tools": self.shows_tools,
            "probe_seconds": round(self.seconds, 2),
        }
        if self.error:
            report["error"] = self.error
        return report

    def lines(self) -> list[str]:
        """The finding in words, one fact a line (the doctor and the serve log print them)."""
        if not self.probed:
            return [f"upstream {self.upstream}: not probed ({self.error})"]
        server = self.server or "an OpenAI-compatible server"
        lines = [f"upstream {self.upstream}: {server}"]
        if self.honoured:
            lines.append(f"enforces constrained output through: {', '.join(self.honoured)}")
        else:
            lines.append("enforces no constrained output that was tried")
        if self.ignored:
            lines.append(f"ignored or refused: {', '.join(self.ignored)}")
        if self.constraint:
            lines.append(
                f"forced tool calls (tool_choice any/tool) go through {self.constraint}; "
                "grounded enums are enforced there"
            )
        else:
            lines.append(
                "forced tool calls rely on the upstream's own tool_choice and on reading "
                "calls written as text; grounded enums are checked, not enforced"
            )
        if self.shows_tools is False:
            lines.append(
                "its chat template leaves the tools out of the prompt: the model sees only "
                "the constraint, not what each tool is for"
            )
        if self.native_tool_calls is not None:
            said = "returns" if self.native_tool_calls else "does not return"
            lines.append(f"its tools path {said} tool_calls for tool_choice required")
        if self.error:
            lines.append(f"probe incomplete: {self.error}")
        return lines


@dataclass
class _Probe:
    root: str
    model: str
    headers: dict[str, str]
    client: httpx.AsyncClient
    found: dict[str, bool] = field(default_factory=dict)

    async def get_json(self, path: str) -> dict[str, Any] | None:
        try:
            response = await self.client.get(
                f"{self.root}{path}", headers=self.headers, timeout=CONNECT_TIMEOUT_S
            )
        except httpx.HTTPError:
            return None
        if response.status_code >= 400:
            return None
        try:
            answer = response.json()
        except ValueError:
            return None
        return answer if isinstance(answer, dict) else None

    async def server(self) -> str:
        """Which server this is, from the endpoints only it has."""
        version = await self.get_json("/api/version")
        if version is not None and "version" in version:
            return "ollama"
        props = await self.get_json("/props")
        if props is not None and ("default_generation_settings" in props or "build_info" in props):
            return "llama.cpp"
        version = await self.get_json("/version")
        if version is not None and "version" in version:
            return "vllm"
        return ""

    def chat_body(self, prompt: str, max_tokens: int) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": False,
        }

    async def chat(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The answer's message, or None when refused (a 4xx: the parameter is not taken)."""
        response = await self.client.post(
            f"{self.root}/v1/chat/completions", json=body, headers=self.headers
        )
        if response.status_code >= 400:
            if response.status_code in (401, 403):
                raise ProbeRefused(
                    f"the upstream refused the API key (HTTP {response.status_code})"
                )
            if response.status_code in (502, 503, 504):  # loading its model, or overloaded
                raise ProbeRefused(f"the upstream is not ready (HTTP {response.status_code})")
            # 4xx, or a 500 from a server that fails on a field it cannot take
            # (llama-cpp-python's on response_format json_schema): not honoured.
            return None
        choices = response.json().get("choices") or [{}]
        message = choices[0].get("message") or {}
        return message if isinstance(message, dict) else None

    async def honours(self, kind: str) -> bool:
        if kind == "format":
            return await self.ollama_format()
        body = self.chat_body("Say hello.", PROBE_TOKENS)
        if kind == "grammar":
            body["grammar"] = PROBE_GRAMMAR
        else:
            body.update(constrained_fields(kind, PROBE_SCHEMA, "probe"))
        message = await self.chat(body)
        return message is not None and is_probe_answer(message.get("content"))

    async def ollama_format(self) -> bool:
        """Ollama's native chat endpoint with `format` (its structured outputs docs)."""
        body = self.chat_body("Say hello.", PROBE_TOKENS)
        body.pop("max_tokens")
        body["options"] = {"temperature": 0, "num_predict": PROBE_TOKENS}
        body["format"] = PROBE_SCHEMA
        response = await self.client.post(f"{self.root}/api/chat", json=body, headers=self.headers)
        if response.status_code >= 400:
            return False
        message = response.json().get("message") or {}
        return is_probe_answer(message.get("content"))

    async def shows_tools(self) -> bool | None:
        """Whether a request's prompt grows when tools are added (one token generated)."""
        counts = []
        for tools in ([], [PROBE_TOOL]):
            body = self.chat_body("Say hello.", 1)
            if tools:
                body["tools"] = tools
            response = await self.client.post(
                f"{self.root}/v1/chat/completions", json=body, headers=self.headers
            )
            usage = response.json().get("usage") if response.status_code < 400 else None
            prompt = usage.get("prompt_tokens") if isinstance(usage, dict) else None
            if not isinstance(prompt, int):
                return None
            counts.append(prompt)
        return counts[1] > counts[0]

    async def native_tool_calls(self) -> bool:
        body = self.chat_body("Report the number 7.", 32)
        body["tools"] = [PROBE_TOOL]
        body["tool_choice"] = "required"
        message = await self.chat(body)
        calls = (message or {}).get("tool_calls") or []
        return any((call.get("function") or {}).get("name") == "report_number" for call in calls)


class ProbeRefused(Exception):
    """The upstream answered in a way that makes further probing pointless."""


def is_probe_answer(content: Any) -> bool:
    """Whether an answer is exactly the one the probe schema allows (fenced or not)."""
    if not isinstance(content, str):
        return False
    text = content.strip().removeprefix("```json").removesuffix("```").strip()
    try:
        return bool(json.loads(text) == {"probe": PROBE_WORD})
    except json.JSONDecodeError:
        return False


async def probe_openai_upstream(
    upstream: str,
    model: str,
    headers: dict[str, str],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    say: Callable[[str], None] | None = None,
) -> Enforcement:
    """Ask the upstream once which constrained-output parameters it honours."""
    root = api_root(upstream)
    started = time.monotonic()
    honoured: list[str] = []
    ignored: list[str] = []
    native: bool | None = None
    shows: bool | None = None
    error = ""
    server = ""
    async with new_client(PROBE_TIMEOUT_S, transport) as client:
        probe = _Probe(root, model, headers, client)
        try:
            server = await probe.server()
            every = tuple(kind for kind in (*CONSTRAINTS, *REPORTED_ONLY) if kind != "format")
            for kind in KINDS_BY_SERVER.get(server, every):
                (honoured if await probe.honours(kind) else ignored).append(kind)
                if say is not None:
                    say(f"probed {kind}: {'honoured' if kind in honoured else 'ignored'}")
            native = await probe.native_tool_calls()
            shows = await probe.shows_tools()
        except ProbeRefused as exc:
            error = str(exc)
        except (httpx.HTTPError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    seconds = time.monotonic() - started
    if error and not honoured and not ignored:
        return Enforcement(root, server, error=error, seconds=seconds, probed=False)
    return Enforcement(
        root, server, tuple(honoured), tuple(ignored), native, shows, error, seconds, probed=True
    )


def enforcement_from_json(report: dict[str, Any]) -> Enforcement:
    """An `Enforcement` back from its `to_json` (a deskloop server's /health)."""
    server = str(report.get("server") or "")
    native = report.get("native_tool_calls")
    return Enforcement(
        upstream=str(report.get("upstream") or ""),
        server="" if server == "unknown" else server,
        honoured=tuple(report.get("enforces") or ()),
        ignored=tuple(report.get("ignores") or ()),
        native_tool_calls=native if isinstance(native, bool) else None,
        shows_tools=shows
        if isinstance(shows := report.get("template_shows_tools"), bool)
        else None,
        error=str(report.get("error") or ""),
        seconds=float(report.get("probe_seconds") or 0.0),
        probed=bool(report.get("enforces") or report.get("ignores")),
    )


async def _endpoint_report(
    url: str, api_key: str, transport: httpx.AsyncBaseTransport | None
) -> tuple[dict[str, Any], list[str]]:
    root = api_root(url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with new_client(PROBE_TIMEOUT_S, transport) as client:
        probe = _Probe(root, "", headers, client)
        health = await probe.get_json("/health")
        if health is not None and "engine" in health and "model" in health:
            engine = str(health["engine"])
            said = f"{root}: deskloop server, engine {engine}, model {health['model']}"
            upstream = health.get("upstream")
            if isinstance(upstream, dict) and upstream:
                found = enforcement_from_json(upstream)
                return {"endpoint": root, "deskloop": health}, [said, *found.lines()]
            lines = [said, "tool calls are constrained in-process by deskloop's own grammar"]
            return {"endpoint": root, "deskloop": health}, lines
        models = await probe.get_json("/v1/models")
    served = (models or {}).get("data") or []
    model = str(served[0].get("id", "")) if served and isinstance(served[0], dict) else ""
    found = await probe_openai_upstream(root, model, headers, transport=transport)
    lines = found.lines()
    if model:
        lines.insert(1, f"model: {model}")
    return {"endpoint": root, "model": model, "upstream": found.to_json()}, lines


def endpoint_section(
    url: str, api_key: str = "", *, transport: httpx.AsyncBaseTransport | None = None
) -> tuple[dict[str, Any], list[str]]:
    """`deskloop doctor --endpoint URL`: what the model server there enforces, as data and
    as lines. A deskloop server says it in /health; anything else is probed directly, with
    the configured upstream key when URL is the configured upstream (and only then)."""
    try:
        if not api_key:
            settings = load_settings().server
            if settings.upstream and api_root(settings.upstream) == api_root(url):
                api_key = settings.upstream_api_key
        return asyncio.run(_endpoint_report(url, api_key, transport))
    except (httpx.HTTPError, ValueError, UpstreamError) as exc:
        return {"endpoint": url, "error": str(exc)}, [f"{url}: could not be asked ({exc})"]
