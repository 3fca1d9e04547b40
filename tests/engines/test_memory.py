"""Zeroed buffers handed back after load stay zeros, and stop counting as resident memory."""

from __future__ import annotations

import ctypes
import mmap
import sys
from pathlib import Path

import pytest

from deskloop.engines.memory import release_zeroed, trim_heap

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

PAGES = 64


def resident_kb(address: int) -> int:
    """Resident kB of the mapping that holds `address`, from /proc/self/smaps."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            start, end = (int(part, 16) for part in head.split("-"))
            inside = start <= address < end
        elif inside and head == "Rss:":
            return int(line.split()[1])
    raise AssertionError("no mapping holds the buffer")


def touched_buffer() -> tuple[mmap.mmap, int]:
    buffer = mmap.mmap(-1, PAGES * mmap.PAGESIZE)
    for page in range(PAGES):
        buffer[page * mmap.PAGESIZE] = 0  # written, so resident
    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    return buffer, address


def test_released_pages_leave_memory_and_still_read_as_zeros() -> None:
    buffer, address = touched_buffer()
    assert resident_kb(address) >= PAGES * mmap.PAGESIZE // 1024
    release_zeroed(address, PAGES * mmap.PAGESIZE)
    assert resident_kb(address) == 0
    assert buffer[:] == bytes(PAGES * mmap.PAGESIZE)
    buffer.close()


def test_pages_the_range_only_partly_covers_are_kept() -> None:
    buffer, address = touched_buffer()
    buffer[5] = 7  # data just before the range, on the first page
    release_zeroed(address + 10, PAGES * mmap.PAGESIZE - 20)
    assert resident_kb(address) == 2 * mmap.PAGESIZE // 1024
    assert buffer[5] == 7
    buffer.close()


def test_trimming_the_heap_is_harmless() -> None:
    kept = [bytes(1000) for _ in range(1000)]
    trim_heap()
    assert all(len(item) == 1000 for item in kept)
