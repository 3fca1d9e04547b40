"""Engines: one module each, created by name through one registry."""

from __future__ import annotations

import importlib
from typing import Any

from deskloop.engines.base import (
    EngineError,
    EngineUnavailable,
    LocalEngine,
    ModelNotFound,
    UpstreamEngine,
)

# name -> "module:factory"; the factory takes (model_reference, options) and returns an engine.
ENGINE_FACTORIES: dict[str, str] = {
    "llamacpp": "deskloop.engines.llamacpp:load_llamacpp_engine",
    "mlx": "deskloop.engines.mlx:load_mlx_engine",
    "openai": "deskloop.engines.openai:load_openai_engine",
    "anthropic": "deskloop.engines.anthropic:load_anthropic_engine",
    "scripted": "deskloop.engines.scripted:load_scripted_engine",
}


def create_engine(name: str, model: str, **options: Any) -> LocalEngine | UpstreamEngine:
    """Load engine `name` with `model` (a path, folder, or upstream model name)."""
    target = ENGINE_FACTORIES.get(name)
    if target is None:
        known = ", ".join(sorted(ENGINE_FACTORIES))
        raise EngineError(f"unknown engine {name!r}; choose one of: {known}")
    module_name, _, factory_name = target.partition(":")
    module = importlib.import_module(module_name)
    factory = getattr(module, factory_name)
    engine: LocalEngine | UpstreamEngine = factory(model, **options)
    return engine


__all__ = [
    "ENGINE_FACTORIES",
    "EngineError",
    "EngineUnavailable",
    "LocalEngine",
    "ModelNotFound",
    "UpstreamEngine",
    "create_engine",
]
