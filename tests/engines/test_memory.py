"""Zeroed memory handed back after load stays zeros, and stops counting as resident memory."""

from __future__ import annotations

import ctypes
import mmap
import sys

import pytest

from deskloop.engines.memory import trim_heap, zero_pages_handed_back

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

PAGES = 64


def resident_pages(address: int, pages: int = PAGES) -> int:
    """How many of the pages from `address` on are in memory (mincore)."""
    libc = ctypes.CDLL(None, use_errno=True)
    flags = (ctypes.c_ubyte * pages)()
    assert libc.mincore(ctypes.c_void_p(address), pages * mmap.PAGESIZE, flags) == 0
    return sum(flag & 1 for flag in flags)


def private_buffer() -> tuple[mmap.mmap, int]:
    """Private anonymous memory (as malloc maps it), every page written, so resident."""
    buffer = mmap.mmap(-1, PAGES * mmap.PAGESIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    for page in range(PAGES):
        buffer[page * mmap.PAGESIZE] = 0
    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    return buffer, address


def test_zero_pages_mapped_in_the_block_leave_memory_and_still_read_as_zeros() -> None:
    with zero_pages_handed_back():
        buffer, address = private_buffer()
    assert resident_pages(address) == 0
    buffer[mmap.PAGESIZE] = 9  # written again: the page comes back, zero-filled but for it
    assert resident_pages(address) == 1
    assert buffer[:] == bytes(mmap.PAGESIZE) + b"\x09" + bytes((PAGES - 1) * mmap.PAGESIZE - 1)
    buffer.close()


def test_pages_holding_data_are_kept_with_their_data() -> None:
    page = mmap.PAGESIZE
    with zero_pages_handed_back():
        buffer, address = private_buffer()
        buffer[5] = 7  # the first page
        buffer[10 * page + page - 1] = 8  # the last byte of the eleventh
    assert resident_pages(address) == 2
    assert buffer[5] == 7 and buffer[10 * page + page - 1] == 8
    assert buffer[:].count(0) == PAGES * page - 2
    buffer.close()


def test_memory_mapped_before_the_block_is_left_alone() -> None:
    buffer, address = private_buffer()
    with zero_pages_handed_back():
        added, added_address = private_buffer()
    assert resident_pages(address) == PAGES
    assert resident_pages(added_address) == 0
    buffer.close()
    added.close()


def test_trimming_the_heap_is_harmless() -> None:
    kept = [bytes(1000) for _ in range(1000)]
    trim_heap()
    assert all(len(item) == 1000 for item in kept)
