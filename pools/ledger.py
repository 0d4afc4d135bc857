"""Who holds which address, and the free space of every pool kept in step with it.

An address is *used* while it has an active holder (a Service showing it) or a retiring hold
(a Service that moved away but may still show it); otherwise it is free in every local pool
that contains it. Pools may overlap, so taking or freeing an address updates each containing
pool (a handful of bisects; pools are few, allocations many).

Addresses are packed integers (see :func:`pools.addresses.pack`), so each one is a single
small key in each dictionary.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from pools.addresses import FAMILIES, Family, Interval, subtract, unpack
from pools.freelist import FreeList
from pools.index import CandidateIndex, ContainmentIndex
from pools.model import Pool


class PoolState:
    """A pool and its free list per family (external pools have none: their backend decides)."""

    __slots__ = ("free", "pool")

    def __init__(self, pool: Pool, used: dict[Family, list[int]]) -> None:
        self.pool = pool
        self.free: dict[Family, FreeList] = {}
        if pool.is_external:
            return
        for family in pool.families():
            intervals = list(pool.usable_intervals(family))
            holes = _runs(_within(used[family], intervals))
            self.free[family] = FreeList(
                subtract(intervals, holes), avoid_buggy=pool.avoids_buggy(family)
            )


def _within(sorted_values: list[int], intervals: list[Interval]) -> list[int]:
    if not intervals:
        return []
    low, high = intervals[0][0], intervals[-1][1]
    return sorted_values[bisect_left(sorted_values, low) : bisect_right(sorted_values, high)]


def _runs(sorted_values: list[int]) -> list[Interval]:
    """Sorted values as maximal runs of consecutive ones (what ``merge`` of single-address
    intervals gives), without a tuple per address: rebuilding after a restore of 100k
    Services makes one interval per run, and a pool filled from its lowest address is one."""
    runs: list[Interval] = []
    if not sorted_values:
        return runs
    first = last = sorted_values[0]
    for value in sorted_values:
        if value <= last + 1:
            last = max(last, value)
            continue
        runs.append((first, last))
        first = last = value
    runs.append((first, last))
    return runs


class Ledger:
    """Holders, retiring holds and the sharing-key index over packed addresses."""

    def __init__(self) -> None:
        self._states: list[PoolState] = []  # local and external, in allocation order
        self._containment = ContainmentIndex([])
        self.candidates = CandidateIndex([])
        self.holders: dict[int, tuple[str, ...]] = {}
        self.retired_by: dict[int, tuple[str, ...]] = {}
        self.retiring: dict[str, tuple[int, ...]] = {}
        self.by_sharing_key: dict[str, set[int]] = {}
        # While deferred, free lists are not touched; rebuild_free() brings them back in step.
        # Restoring 100k Services then costs one sort instead of 100k interval splits.
        self.deferred = False

    # --- pools ------------------------------------------------------------------------------

    @property
    def states(self) -> list[PoolState]:
        return self._states

    @states.setter
    def states(self, states: list[PoolState]) -> None:
        """Set the pools (in allocation order) and rebuild the indexes over them."""
        self._states = states
        self._containment = ContainmentIndex(states)
        self.candidates = CandidateIndex(states)

    def used_sorted(self) -> dict[Family, list[int]]:
        used: dict[Family, list[int]] = {family: [] for family in FAMILIES}
        for packed in set(self.holders) | set(self.retired_by):
            family, value = unpack(packed)
            used[family].append(value)
        for values in used.values():
            values.sort()
        return used

    def containing(self, family: Family, value: int) -> list[PoolState]:
        """Local pools that contain the address, in allocation order (indexed)."""
        return self._containment.containing(family, value)

    def is_used(self, packed: int) -> bool:
        return packed in self.holders or packed in self.retired_by

    def rebuild_free(self) -> None:
        """Recompute every local pool's free list from the addresses in use."""
        used = self.used_sorted()
        self.states = [PoolState(state.pool, used) for state in self.states]

    def _occupy(self, packed: int) -> None:
        if self.deferred:
            return
        family, value = unpack(packed)
        for state in self.containing(family, value):
            state.free[family].take(value)

    def _vacate(self, packed: int) -> None:
        if self.deferred:
            return
        family, value = unpack(packed)
        for state in self.containing(family, value):
            state.free[family].put(value)

    # --- active holders ---------------------------------------------------------------------

    def hold(self, packed: int, key: str, sharing_key: str | None) -> None:
        if not self.is_used(packed):
            self._occupy(packed)
        current = self.holders.get(packed, ())
        if key not in current:
            self.holders[packed] = (*current, key)
        if sharing_key is not None:
            self.by_sharing_key.setdefault(sharing_key, set()).add(packed)

    def unhold(self, packed: int, key: str, sharing_key: str | None, *, retire: bool) -> bool:
        """Drop key's hold; with ``retire``, keep the address for key if nobody else holds it.

        Returns whether a retiring hold was kept.
        """
        remaining = tuple(holder for holder in self.holders.get(packed, ()) if holder != key)
        if remaining:
            self.holders[packed] = remaining
            return False
        self.holders.pop(packed, None)
        if sharing_key is not None:
            self._unindex(packed, sharing_key)
        if retire:
            # Still used (now by the retiring hold), so the free lists do not change.
            self.retired_by[packed] = (*self.retired_by.get(packed, ()), key)
            self.retiring[key] = (*self.retiring.get(key, ()), packed)
            return True
        if not self.is_used(packed):
            self._vacate(packed)
        return False

    def reindex(self, packed: int, old_key: str | None, new_key: str | None) -> None:
        """A sole holder changed its sharing key in place."""
        if old_key == new_key:
            return
        if old_key is not None:
            self._unindex(packed, old_key)
        if new_key is not None:
            self.by_sharing_key.setdefault(new_key, set()).add(packed)

    def _unindex(self, packed: int, sharing_key: str) -> None:
        addresses = self.by_sharing_key.get(sharing_key)
        if addresses is not None:
            addresses.discard(packed)
            if not addresses:
                del self.by_sharing_key[sharing_key]

    # --- retiring holds ---------------------------------------------------------------------

    def drop_retiring(self, key: str, only: Iterable[int] | None = None) -> tuple[int, ...]:
        """Release key's retiring holds (all, or those in ``only``); returns what was dropped."""
        if key not in self.retiring:
            return ()
        held = self.retiring.pop(key)
        targets = set(held) if only is None else set(held) & set(only)
        kept = tuple(packed for packed in held if packed not in targets)
        if kept:
            self.retiring[key] = kept
        dropped = tuple(packed for packed in held if packed in targets)
        for packed in dropped:
            remaining = tuple(k for k in self.retired_by.get(packed, ()) if k != key)
            if remaining:
                self.retired_by[packed] = remaining
            else:
                self.retired_by.pop(packed, None)
                if not self.is_used(packed):
                    self._vacate(packed)
        return dropped

    def drop_others_retiring(self, packed: int, key: str) -> None:
        """Forget retiring holds of other Services on an address (restore found its owner).

        Call after :meth:`hold` for ``key``, so the address stays used throughout.
        """
        for other in self.retired_by.get(packed, ()):
            if other != key:
                # The address stays used by ``key``'s hold, so nothing is vacated here.
                self.retiring[other] = tuple(p for p in self.retiring[other] if p != packed)
                if not self.retiring[other]:
                    del self.retiring[other]
        if key in self.retired_by.get(packed, ()):
            self.retired_by[packed] = (key,)
        else:
            self.retired_by.pop(packed, None)
