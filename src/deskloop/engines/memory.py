"""Giving memory back to the system once a model is loaded (Linux with glibc; elsewhere nothing).

Resident memory after load is what a person compares with llama-server's (issue 21): what
loading freed, and zeroed buffers nothing has written yet, need not stay resident.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import sys

MADV_DONTNEED = 4  # <sys/mman.h> on Linux: the pages read back as zeros until written


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name or "libc.so.6", use_errno=True)
    except OSError:
        return None


def release_zeroed(address: int, size: int) -> None:
    """Hand back the whole pages of a private buffer that holds only zeros.

    Reading them still gives zeros (Linux zero-fills them again on first touch), so this
    changes no value; pages at either end that the range only partly covers are kept.
    """
    libc = _libc()
    if libc is None or not address or size <= 0:
        return
    page = mmap.PAGESIZE
    start = -(-address // page) * page
    end = (address + size) // page * page
    if end > start:
        libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), MADV_DONTNEED)


def trim_heap() -> None:
    """Return the heap's free pages (left by loading) to the system: glibc's malloc_trim."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim is not None:
        trim(0)
