"""Whether the model is small, from its size rather than from where it runs.

A deskloop server reports the served model's parameter count (`/health`, `/v1/models`);
other servers are judged by the size in the model's name ("Qwen2.5-Coder-0.5B",
"smollm2-135m"), and a model with neither is taken as large (the cloud).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

# Under this, a model chooses badly between writing and calling, and between many tools:
# SmolLM2-135M and Qwen2.5-Coder-0.5B both wrote calls as plain text when not forced
# (issue 17's trial: 0 of 10 tasks for Qwen with tool_choice auto).
SMALL_MODEL_PARAMETERS = 4_000_000_000
HEALTH_TIMEOUT_S = 3.0
_SIZE_IN_NAME = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*([bm])(?![a-z0-9])", re.IGNORECASE)


@dataclass(frozen=True)
class ModelSize:
    small: bool
    parameters: int | None  # None: not known
    why: str  # for the session's header: where the judgement came from


def parameters_in_name(name: str) -> int | None:
    """The size a model's name states: '0.5b' -> 500M, '135M' -> 135M; None without one."""
    found = _SIZE_IN_NAME.findall(name.replace("_", "-"))
    if not found:
        return None
    number, unit = found[-1]
    return int(float(number) * (1e9 if unit.lower() == "b" else 1e6))


def judge_model_size(setting: str, model: str, health: dict[str, Any] | None) -> ModelSize:
    """`setting` is agent.model_size; `health` is a deskloop server's /health, if any."""
    reported = health.get("parameters") if health else None
    parameters = int(reported) if isinstance(reported, int) and reported > 0 else None
    source = "as its server reports"
    if parameters is None:
        parameters = parameters_in_name(model)
        source = "by its name"
    if setting in ("small", "large"):
        return ModelSize(setting == "small", parameters, f"agent.model_size = {setting}")
    if parameters is None:
        return ModelSize(False, None, "its size is not known: taken as large")
    small = parameters < SMALL_MODEL_PARAMETERS
    return ModelSize(small, parameters, f"{_words(parameters)} parameters, {source}")


def _words(parameters: int) -> str:
    if parameters >= 1e9:
        return f"{parameters / 1e9:.1f}B"
    return f"{parameters / 1e6:.0f}M"


async def endpoint_health(base_url: str) -> dict[str, Any] | None:
    """A deskloop server's /health (engine, model, parameters); None from other servers."""
    try:
        async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT_S) as client:
            response = await client.get(base_url.rstrip("/") + "/health")
        health = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    return health if isinstance(health, dict) and "engine" in health else None
