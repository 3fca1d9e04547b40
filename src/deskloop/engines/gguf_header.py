"""Read a GGUF header without loading the model (layout: ggml docs/gguf.md).

Besides reading scalar metadata, it checks the whole header before MLX sees the file:
`mx.load` crashes the process (segfault, MLX 0.32) on a damaged GGUF.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
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
_MAX_DIMENSIONS = 4  # GGML_MAX_DIMS
_DEFAULT_ALIGNMENT = 32
# ggml type id -> (bytes per block, weights per block), for the types whose size is checked.
GGML_BLOCK_SIZES = {0: (4, 1), 1: (2, 1), 2: (18, 32), 3: (20, 32), 8: (34, 32), 30: (2, 1)}
GGML_TYPE_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 8: "Q8_0", 30: "BF16"}

Scalar = int | float | bool | str


@dataclass(frozen=True)
class TensorRecord:
    """One tensor as the header describes it."""

    name: str
    ggml_type: int
    shape: tuple[int, ...]


class _Damaged(Exception):
    """A field of the header cannot be right (a length past the end of the file, an unknown type)."""


def read_gguf_scalars(path: Path, wanted: set[str]) -> dict[str, Scalar]:
    """The scalar values of the `wanted` keys, stopping as soon as all are found."""
    with _open_gguf(path) as reader:
        try:
            return reader.read_metadata(wanted, stop_when_found=True)
        except (_Damaged, struct.error) as exc:
            raise EngineError(f"{path} has a damaged GGUF header ({exc})") from exc


def check_gguf_layout(path: Path) -> list[TensorRecord]:
    """Walk every metadata entry and tensor record; raise EngineError if any points outside the file."""
    with _open_gguf(path) as reader:
        try:
            return reader.check_tensors(reader.read_metadata(set(), stop_when_found=False))
        except (_Damaged, struct.error) as exc:
            raise EngineError(f"{path} has a damaged GGUF header ({exc})") from exc


def parameter_count(records: list[TensorRecord]) -> int:
    """Weights in the model: the elements of every tensor the header lists."""
    total = 0
    for record in records:
        count = 1
        for extent in record.shape:
            count *= extent
        total += count
    return total


def _open_gguf(path: Path) -> _HeaderReader:
    handle = path.open("rb")
    if handle.read(4) != b"GGUF":
        handle.close()
        raise ModelNotFound(f"{path} is not a GGUF file (its first bytes are not 'GGUF')")
    return _HeaderReader(handle, path.stat().st_size)


def _byte_size(record: TensorRecord) -> int:
    """Bytes the tensor's data takes; 0 for types whose block size is not in the table."""
    if record.ggml_type not in GGML_BLOCK_SIZES:
        return 0
    block_bytes, block_weights = GGML_BLOCK_SIZES[record.ggml_type]
    count = 1
    for extent in record.shape:
        count *= extent
    return count // block_weights * block_bytes


class _HeaderReader:
    """Sequential reads over one GGUF header, each checked against the file size."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._handle = handle
        self._size = size
        self._version, self._tensor_count, self._entry_count = struct.unpack("<IQQ", self._take(20))

    def __enter__(self) -> _HeaderReader:
        return self

    def __exit__(self, *_: object) -> None:
        self._handle.close()

    def read_metadata(self, wanted: set[str], *, stop_when_found: bool) -> dict[str, Scalar]:
        found: dict[str, Scalar] = {}
        self._plausible_count(self._entry_count, "metadata entries")
        for _ in range(self._entry_count):
            if stop_when_found and found.keys() >= wanted:
                break
            key = self._string()
            (value_type,) = struct.unpack("<I", self._take(4))
            if (key in wanted or key == "general.alignment") and value_type != _ARRAY:
                found[key] = self._scalar(value_type)
            else:
                self._skip(value_type)
        return found

    def check_tensors(self, metadata: dict[str, Scalar]) -> list[TensorRecord]:
        self._plausible_count(self._tensor_count, "tensors")
        records: list[tuple[TensorRecord, int]] = []
        for _ in range(self._tensor_count):
            name = self._string()
            (dimensions,) = struct.unpack("<I", self._take(4))
            if not 0 < dimensions <= _MAX_DIMENSIONS:
                raise _Damaged(f"tensor {name!r} has {dimensions} dimensions")
            shape = struct.unpack(f"<{dimensions}Q", self._take(8 * dimensions))
            tensor_type, offset = struct.unpack("<IQ", self._take(12))
            records.append((TensorRecord(name, tensor_type, shape), offset))
        alignment = int(metadata.get("general.alignment", _DEFAULT_ALIGNMENT)) or 1
        data_start = -(-self._handle.tell() // alignment) * alignment
        for record, offset in records:
            if data_start + offset + _byte_size(record) > self._size:
                raise _Damaged(f"tensor {record.name!r} runs past the end of the file")
        return [record for record, _ in records]

    def _take(self, count: int) -> bytes:
        if count > self._size - self._handle.tell():
            raise _Damaged(f"a {count}-byte field runs past the end of the file")
        return self._handle.read(count)

    def _string(self) -> str:
        (length,) = struct.unpack("<Q", self._take(8))
        return self._take(length).decode("utf-8", "replace")

    def _scalar(self, value_type: int) -> Scalar:
        if value_type == _STRING:
            return self._string()
        layout = self._layout(value_type)
        value: Scalar = struct.unpack(layout, self._take(struct.calcsize(layout)))[0]
        return value

    def _skip(self, value_type: int) -> None:
        if value_type == _STRING:
            (length,) = struct.unpack("<Q", self._take(8))
            self._seek(length)
        elif value_type == _ARRAY:
            item_type, count = struct.unpack("<IQ", self._take(12))
            if item_type in _SCALARS:
                self._seek(struct.calcsize(_SCALARS[item_type]) * count)
            else:
                self._plausible_count(count, "array items")
                for _ in range(count):
                    self._skip(item_type)
        else:
            self._seek(struct.calcsize(self._layout(value_type)))

    def _seek(self, count: int) -> None:
        if count > self._size - self._handle.tell():
            raise _Damaged(f"a {count}-byte value runs past the end of the file")
        self._handle.seek(count, 1)

    def _layout(self, value_type: int) -> str:
        if value_type not in _SCALARS:
            raise _Damaged(f"unknown value type {value_type}")
        return _SCALARS[value_type]

    def _plausible_count(self, count: int, what: str) -> None:
        if count > self._size:  # every entry takes at least one byte
            raise _Damaged(f"{count} {what} in a {self._size}-byte file")
