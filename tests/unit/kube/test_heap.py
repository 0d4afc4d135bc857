"""Freed heap goes back to the OS: RSS falls after `release_free_memory`, as measured."""

from __future__ import annotations

import ctypes.util
from pathlib import Path

import pytest

from ccm.kube.heap import release_free_memory


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists() or not ctypes.util.find_library("c"),
                    reason="Linux with a C library only")
def test_a_burst_of_freed_memory_is_returned() -> None:
    # 100 MB in blocks under glibc's mmap threshold, each followed by a small block that is
    # kept: the freed space sits inside the heap, where only a trim can return it
    big = [bytearray(64 * 1024) for _ in range(1600)]
    pins = [bytearray(64) for _ in range(1600)]
    for block in big:
        block[::4096] = b"x" * len(block[::4096])  # touch every page
    del big
    freed = rss_kb()
    release_free_memory()
    trimmed = rss_kb()
    assert freed - trimmed > 50_000, (freed, trimmed)
    assert len(pins) == 1600
