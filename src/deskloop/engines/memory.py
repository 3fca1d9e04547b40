"""Giving memory back to the system once a model is loaded (Linux with glibc; elsewhere nothing).

Resident memory after load is what a person compares with llama-server's (issue 21): what
loading freed, and the zeroed buffers nothing has written yet, need not stay resident.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

MADV_DONTNEED = 4  # <sys/mman.h> on Linux: the pages read back as zeros until written


def _libc(*, holding_the_gil: bool = False) -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        # PyDLL keeps the GIL through the call, so no Python thread writes in between.
        return ctypes.PyDLL(name) if holding_the_gil else ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None


def trim_heap() -> None:
    """Return the heap's free pages (left by loading) to the system: glibc's malloc_trim."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is not None:
        trim(0)


@contextmanager
def zero_pages_handed_back() -> Iterator[None]:
    """Hand back each page of the memory mapped while the block ran that holds only zeros.

    Reading such a page still gives zeros (Linux fills it again on first touch), so no value
    changes; a page comes back when something first writes it. Nothing but this thread may
    write that memory meanwhile: it is meant for loading, before serving starts.
    """
    before = _private_anonymous_ranges()
    yield
    libc = _libc(holding_the_gil=True)
    if libc is None:
        return
    for start, end in _ranges_outside(_private_anonymous_ranges(), before):
        _release_zero_pages(libc, start, end)


def _private_anonymous_ranges() -> list[tuple[int, int]]:
    ranges = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) == 5 and fields[1] == "rw-p":  # no file or [name]: plain anonymous memory
            start, end = (int(bound, 16) for bound in fields[0].split("-"))
            ranges.append((start, end))
    return ranges


def _ranges_outside(
    ranges: list[tuple[int, int]], old: list[tuple[int, int]]
) -> Iterator[tuple[int, int]]:
    """The parts of `ranges` that no range of `old` covers (the kernel merges a new mapping
    into an adjacent one, so a new allocation can show up as an old mapping grown)."""
    old = sorted(old)
    for start, end in ranges:
        for old_start, old_end in old:
            if old_end <= start or old_start >= end:
                continue
            if old_start > start:
                yield start, old_start
            start = max(start, old_end)
            if start >= end:
                break
        if start < end:
            yield start, end


def _release_zero_pages(libc: ctypes.CDLL, start: int, end: int) -> None:
    page = mmap.PAGESIZE
    words = (ctypes.c_uint64 * ((end - start) // 8)).from_address(start)
    holds_data = np.ctypeslib.as_array(words).reshape(-1, page // 8).any(axis=1)
    # Runs of all-zero pages, as [first, last) page numbers.
    edges = np.flatnonzero(np.diff(np.concatenate(([True], holds_data, [True])).astype(np.int8)))
    for first, last in zip(edges[::2], edges[1::2], strict=True):
        libc.madvise(
            ctypes.c_void_p(start + int(first) * page),
            ctypes.c_size_t(int(last - first) * page),
            MADV_DONTNEED,
        )
