"""Indexes over the pool set, so choosing a pool does not grow with the number of pools.

Two questions are asked on every allocation, hold and release, and both used to walk every
pool: *which pools contain this address* and *which pools may serve this Service*.

* Containment: every usable interval of every local pool, sorted by start, with the running
  maximum of their ends. The pools containing an address are found by a bisect and a walk back
  over the intervals that can still reach it: O(log n + k) for k overlapping pools, O(log n)
  when pools do not overlap.
* Automatic candidates: pools with ``autoAssign`` that are not disabled, split by what can be
  indexed. A pool listing namespaces is filed under each of them; a pool that restricts no
  namespace goes to a list every Service sees; a pool with a namespaceSelector (labels cannot
  be indexed by name) goes to a short list checked per Service. The Service's own selectors
  are checked only on that union, which is then put in allocation order.

Built once per pool-set change (and after a bulk restore); both are read-only afterwards.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pools.addresses import FAMILIES, Family

if TYPE_CHECKING:  # the ledger builds these indexes over its states
    from pools.ledger import PoolState


class ContainmentIndex:
    """Which local pools contain an address, in allocation order."""

    def __init__(self, states: list[PoolState]) -> None:
        self._starts: dict[Family, list[int]] = {}
        self._ends: dict[Family, list[int]] = {}
        self._reach: dict[Family, list[int]] = {}
        self._owners: dict[Family, list[int]] = {}
        self._states = states
        for family in FAMILIES:
            spans = sorted(
                (first, last, rank)
                for rank, state in enumerate(states)
                if family in state.free
                for first, last in state.pool.usable_intervals(family)
            )
            reach: list[int] = []
            highest = -1
            for _, last, _ in spans:
                highest = max(highest, last)
                reach.append(highest)
            self._starts[family] = [first for first, _, _ in spans]
            self._ends[family] = [last for _, last, _ in spans]
            self._reach[family] = reach
            self._owners[family] = [rank for _, _, rank in spans]

    def containing(self, family: Family, value: int) -> list[PoolState]:
        starts = self._starts.get(family)
        if not starts:
            return []
        ends, reach, owners = self._ends[family], self._reach[family], self._owners[family]
        ranks: set[int] = set()
        index = bisect_right(starts, value) - 1
        while index >= 0 and reach[index] >= value:
            if ends[index] >= value:
                ranks.add(owners[index])
            index -= 1
        found = [self._states[rank] for rank in sorted(ranks)]
        # avoidBuggyIPs masks addresses inside an interval: the pool decides the last word
        return [state for state in found if state.pool.contains_value(family, value)]


class CandidateIndex:
    """Pools a Service may get an automatic address from, without walking every pool."""

    def __init__(self, states: list[PoolState]) -> None:
        self._rank = {state.pool.name: rank for rank, state in enumerate(states)}
        self._everyone: list[PoolState] = []
        self._by_namespace: dict[str, list[PoolState]] = {}
        self._by_labels: list[PoolState] = []
        for state in states:
            spec = state.pool.spec
            if spec.disabled or not spec.auto_assign:
                continue
            allocation = spec.service_allocation
            if allocation is None or not (allocation.namespaces or allocation.namespace_selector):
                self._everyone.append(state)
                continue
            for namespace in dict.fromkeys(allocation.namespaces):
                self._by_namespace.setdefault(namespace, []).append(state)
            if allocation.namespace_selector is not None:
                self._by_labels.append(state)

    def candidates(
        self,
        namespace: str,
        namespace_labels: Mapping[str, str],
        service_labels: Mapping[str, str],
    ) -> list[PoolState]:
        """The selecting pools in allocation order (priority, then name)."""
        seen: dict[str, PoolState] = {}
        for group in (self._everyone, self._by_namespace.get(namespace, ()), self._by_labels):
            for state in group:
                if state.pool.name not in seen and state.pool.selects(
                    namespace, namespace_labels, service_labels
                ):
                    seen[state.pool.name] = state
        found = list(seen.values())
        if len(found) > 1:
            found.sort(key=lambda state: self._rank[state.pool.name])
        return found
