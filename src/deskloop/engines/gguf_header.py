"""Read scalar metadata from a GGUF header without loading the model (format: ggml docs/gguf.md)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from deskloop.engines.base import EngineError, ModelNotFound

_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
_MAX_STRING = 1 << 26  # chat templates are the longest strings; a damaged length is far larger

Scalar = int | float | bool | str


def read_gguf_scalars(path: Path, wanted: set[str]) -> dict[str, Scalar]:
    """The scalar values of the `wanted` keys, stopping as soon as all are found."""
    try:
        return _read_scalars(path, wanted)
    except (KeyError, struct.error, OverflowError, MemoryError, _Truncated) as exc:
        raise EngineError(f"{path} has a damaged GGUF header ({exc!r})") from exc


def _read_scalars(path: Path, wanted: set[str]) -> dict[str, Scalar]:
    found: dict[str, Scalar] = {}
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelNotFound(f"{path} is not a GGUF file (its first bytes are not 'GGUF')")
        _version, _tensors, entries = struct.unpack("<IQQ", handle.read(20))
        for _ in range(entries):
            if found.keys() >= wanted:
                break
            key = _read_string(handle)
            (value_type,) = struct.unpack("<I", handle.read(4))
            if key in wanted and value_type != _ARRAY:
                found[key] = _read_scalar(handle, value_type)
            else:
                _skip_value(handle, value_type)
    return found


class _Truncated(Exception):
    """A length field points past the end of the file."""


def _read_string(handle: BinaryIO) -> str:
    (length,) = struct.unpack("<Q", handle.read(8))
    data = handle.read(min(length, _MAX_STRING))
    if len(data) != length:
        raise _Truncated(f"a {length}-byte string")
    return data.decode("utf-8", "replace")


def _read_scalar(handle: BinaryIO, value_type: int) -> Scalar:
    if value_type == _STRING:
        return _read_string(handle)
    layout = _SCALARS[value_type]
    value: Scalar = struct.unpack(layout, handle.read(struct.calcsize(layout)))[0]
    return value


def _skip_value(handle: BinaryIO, value_type: int) -> None:
    if value_type == _STRING:
        (length,) = struct.unpack("<Q", handle.read(8))
        handle.seek(length, 1)
    elif value_type == _ARRAY:
        item_type, count = struct.unpack("<IQ", handle.read(12))
        if item_type in _SCALARS:
            handle.seek(struct.calcsize(_SCALARS[item_type]) * count, 1)
        else:
            for _ in range(count):
                _skip_value(handle, item_type)
    else:
        handle.seek(struct.calcsize(_SCALARS[value_type]), 1)
