"""The free addresses of one pool and family, as sorted disjoint intervals.

Why intervals: the cost of every operation depends on how fragmented the free space is
(at most one interval per allocation), never on how many addresses the pool holds, so an
empty IPv6 /48 is one interval like an empty IPv4 /30.

Why chunks: interval starts live in a list of sorted chunks (at most ``2 * LOAD`` each) with an
index of each chunk's last start. Finding an interval is a bisect over the index then over one
chunk (O(log n)); inserting or removing shifts one bounded chunk, so a pool with 100k scattered
holes costs the same per operation as one with ten.

Every interval is trimmed so that its first and last addresses are usable under the pool's
``avoidBuggyIPs`` mask; an interval may contain masked addresses inside it (x.x.x.255 and the
next x.x.x.0 between two usable neighbours), which :func:`usable_count` discounts.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator

from pools.addresses import Interval, next_usable, trim, usable_count

LOAD = 256


class FreeList:
    """Sorted, disjoint free intervals with O(log n) lowest / take / put."""

    __slots__ = ("_avoid_buggy", "_chunks", "_count", "_ends", "_maxes")

    def __init__(self, intervals: Iterable[Interval] = (), *, avoid_buggy: bool = False) -> None:
        self._avoid_buggy = avoid_buggy
        self._chunks: list[list[int]] = []
        self._maxes: list[int] = []
        self._ends: dict[int, int] = {}
        self._count = 0
        chunk: list[int] = []
        for first, last in intervals:  # must be sorted and disjoint
            trimmed = trim(first, last, avoid_buggy)
            if trimmed is None:
                continue
            first, last = trimmed
            if chunk and first <= self._ends[chunk[-1]]:
                raise ValueError("free intervals must be sorted and disjoint")
            chunk.append(first)
            self._ends[first] = last
            self._count += usable_count(first, last, avoid_buggy)
            if len(chunk) == LOAD:
                self._append_chunk(chunk)
                chunk = []
        if chunk:
            self._append_chunk(chunk)

    def _append_chunk(self, chunk: list[int]) -> None:
        if self._maxes and chunk[0] <= self._maxes[-1]:
            raise ValueError("free intervals must be sorted and disjoint")
        self._chunks.append(chunk)
        self._maxes.append(chunk[-1])

    # --- queries ----------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Usable free addresses (an exact int; 2**64 for an empty IPv6 /64)."""
        return self._count

    def __len__(self) -> int:
        """Number of intervals (the fragmentation), not addresses."""
        return len(self._ends)

    def __iter__(self) -> Iterator[Interval]:
        for chunk in self._chunks:
            for first in chunk:
                yield first, self._ends[first]

    def lowest(self) -> int | None:
        """The lowest free usable address."""
        return self._chunks[0][0] if self._chunks else None

    def _floor(self, value: int) -> int | None:
        """The largest interval start <= value."""
        index = bisect_right(self._maxes, value)
        if index < len(self._chunks):
            chunk = self._chunks[index]
            position = bisect_right(chunk, value) - 1
            if position >= 0:
                return chunk[position]
        return self._maxes[index - 1] if index > 0 else None

    def contains(self, value: int) -> bool:
        """Whether value is a free usable address."""
        if self._avoid_buggy and value & 255 in (0, 255):
            return False
        first = self._floor(value)
        return first is not None and value <= self._ends[first]

    # --- updates ----------------------------------------------------------------------------

    def take(self, value: int) -> None:
        """Mark a free usable address as used; KeyError if it is not free."""
        first = self._floor(value)
        if (
            first is None
            or value > self._ends[first]
            or (self._avoid_buggy and value & 255 in (0, 255))
        ):
            raise KeyError(value)
        last = self._ends[first]
        self._remove(first)
        below = trim(first, value - 1, self._avoid_buggy)
        above = trim(value + 1, last, self._avoid_buggy)
        if below is not None:
            self._insert(*below)
        if above is not None:
            self._insert(*above)
        self._count -= 1

    def put(self, value: int) -> None:
        """Return a usable address to the free space, joining its neighbours."""
        if self._avoid_buggy and value & 255 in (0, 255):
            raise ValueError(f"{value} is masked by avoidBuggyIPs")
        first, last = value, value
        below = self._floor(value)
        if below is not None:
            below_last = self._ends[below]
            if below_last >= value:
                raise KeyError(value)  # already free
            if next_usable(below_last + 1, self._avoid_buggy) == value:
                first = below
                self._remove(below)
        following = self._ceiling(value + 1)
        if following is not None and following == next_usable(value + 1, self._avoid_buggy):
            last = self._ends[following]
            self._remove(following)
        self._insert(first, last)
        self._count += 1

    def _ceiling(self, value: int) -> int | None:
        """The smallest interval start >= value."""
        index = bisect_left(self._maxes, value)
        if index == len(self._chunks):
            return None
        chunk = self._chunks[index]
        return chunk[bisect_left(chunk, value)]

    def _insert(self, first: int, last: int) -> None:
        self._ends[first] = last
        if not self._chunks:
            self._chunks.append([first])
            self._maxes.append(first)
            return
        index = bisect_left(self._maxes, first)
        if index == len(self._chunks):
            index -= 1
        chunk = self._chunks[index]
        insort(chunk, first)
        self._maxes[index] = chunk[-1]
        if len(chunk) > 2 * LOAD:
            self._chunks.insert(index + 1, chunk[LOAD:])
            del chunk[LOAD:]
            self._maxes[index] = chunk[-1]
            self._maxes.insert(index + 1, self._chunks[index + 1][-1])

    def _remove(self, first: int) -> None:
        del self._ends[first]
        index = bisect_left(self._maxes, first)
        chunk = self._chunks[index]
        del chunk[bisect_left(chunk, first)]
        if chunk:
            self._maxes[index] = chunk[-1]
        else:
            del self._chunks[index]
            del self._maxes[index]
