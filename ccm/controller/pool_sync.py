"""IPPool custom resources → the allocator's pool set, and IPPool status back.

Pools are re-read as a whole on every change (there are few), validated with the same model as
`vipam check`, and handed to the allocator, which never moves an existing assignment. Status
(capacity / allocated / available per family, conditions Ready and Overlapping) is written by a
single loop at most once per interval and only where it differs, so allocation bursts cost one
status write per pool, not one per Service.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ccm.contract import names, views
from ccm.health.numbers import family_usage
from ccm.kube.client import JSON, ApiError, KubeApi
from ccm.kube.events import EventRecorder
from ccm.kube.leader import micro_time
from ccm.kube.resources import IPPOOLS
from pools.allocator import Allocator
from pools.model import Pool, PoolValidationError, find_overlaps, parse_pool

log = logging.getLogger(__name__)


@dataclass
class PoolSet:
    """The pools as last read: the valid ones, the errors of the rest, and overlaps."""

    valid: dict[str, Pool] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    overlaps: dict[str, list[str]] = field(default_factory=dict)  # pool -> messages


def read_pools(objects: Mapping[str, JSON]) -> PoolSet:
    result = PoolSet()
    for name, obj in sorted(objects.items()):
        pool = views.ippool(obj)
        if views.meta_of(pool).get("deletionTimestamp"):
            continue
        try:
            result.valid[name] = parse_pool(name, pool.get("spec") or {})
        except PoolValidationError as exc:
            result.errors[name] = list(exc.errors) or [str(exc)]
    for overlap in find_overlaps(result.valid.values()):
        text = f"{overlap.ranges} is in both {overlap.pool_a} and {overlap.pool_b}"
        result.overlaps.setdefault(overlap.pool_a, []).append(text)
        if overlap.pool_b != overlap.pool_a:
            result.overlaps.setdefault(overlap.pool_b, []).append(text)
    return result


def _condition(
    type_: str, ok: bool, reason: str, message: str, generation: int
) -> views.Condition:
    return {
        "type": type_,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def desired_pool_status(
    pool: views.IPPool, pools: PoolSet, allocator: Allocator | None
) -> views.IPPoolStatus:
    meta = views.meta_of(pool)
    name = meta.get("name", "")
    generation = meta.get("generation") or 0
    status: views.IPPoolStatus = {}
    if allocator is not None and name in pools.valid:
        for family, stats in allocator.stats().get(name, {}).items():
            usage = family_usage(stats.capacity, stats.allocated, stats.available)
            if family == "IPv4":
                status["ipv4"] = usage
            else:
                status["ipv6"] = usage
    errors = pools.errors.get(name)
    overlaps = pools.overlaps.get(name, [])
    status["conditions"] = [
        _condition(
            "Ready", not errors, "InvalidSpec" if errors else "Valid",
            "; ".join(errors) if errors else "pool is valid and in use", generation,
        ),
        _condition(
            "Overlapping", bool(overlaps), "Overlap" if overlaps else "NoOverlap",
            "; ".join(overlaps) if overlaps else "no address is in another pool", generation,
        ),
    ]
    return status


def _merge_transition_times(old: list[views.Condition], new: list[views.Condition]) -> None:
    """Keep lastTransitionTime unless the condition's status really changed."""
    previous = {c.get("type"): c for c in old}
    stamp = micro_time()[:19] + "Z"
    for condition in new:
        before = previous.get(condition.get("type"))
        if before is not None and before.get("status") == condition.get("status"):
            condition["lastTransitionTime"] = before.get("lastTransitionTime", stamp)
        else:
            condition["lastTransitionTime"] = stamp


class PoolSync:
    def __init__(
        self,
        client: KubeApi,
        cache: Mapping[str, JSON],
        recorder: EventRecorder,
        fence: Callable[[], bool],
        interval: float = 1.0,
    ) -> None:
        self.client = client
        self.cache = cache
        self.recorder = recorder
        self.fence = fence
        self.interval = interval
        self.pools = PoolSet()
        self.dirty = asyncio.Event()
        self._reported: set[tuple[str, str]] = set()

    def refresh(self) -> PoolSet:
        self.pools = read_pools(self.cache)
        self.dirty.set()
        return self.pools

    async def report(self) -> None:
        """Events for invalid and overlapping pools, once per distinct message while it lasts.

        Called by the status loop after every change, so a pool created or edited at any time
        gets its Event (not only those already bad when leadership started); a problem that
        goes away and comes back is reported again.
        """
        current = {
            *((name, "; ".join(errors)) for name, errors in self.pools.errors.items()),
            *((name, "; ".join(texts)) for name, texts in self.pools.overlaps.items()),
        }
        self._reported &= current
        for name, errors in self.pools.errors.items():
            await self._event_once(name, names.REASON_INVALID_POOL, "; ".join(errors))
        for name, overlaps in self.pools.overlaps.items():
            await self._event_once(name, names.REASON_POOL_OVERLAP, "; ".join(overlaps))

    async def _event_once(self, pool: str, reason: str, message: str) -> None:
        if (pool, message) in self._reported:
            return
        obj = self.cache.get(pool)
        if obj is None:
            return
        self._reported.add((pool, message))
        self.recorder.emit(obj, "Warning", reason, message)

    async def run_status_loop(self, allocator: Allocator) -> None:
        """Write changed pool status at most once per interval (leader only)."""
        while True:
            await self.dirty.wait()
            self.dirty.clear()
            if self.fence():
                await self.report()
            for name, obj in list(self.cache.items()):
                if not self.fence():
                    break
                try:
                    await self._write_status(obj, allocator)
                except ApiError as exc:
                    if exc.conflict:
                        self.dirty.set()
                    elif not exc.not_found:
                        log.warning("status of pool %s not written: %s", name, exc)
                        self.dirty.set()
            await asyncio.sleep(self.interval)

    async def _write_status(self, obj: JSON, allocator: Allocator) -> None:
        pool = views.ippool(obj)
        want = desired_pool_status(pool, self.pools, allocator)
        have = pool.get("status") or {}
        _merge_transition_times(have.get("conditions") or [], want.get("conditions") or [])
        if want == have:
            return
        new = copy.deepcopy(obj)
        new["status"] = want
        # a stale cache answers 409 here; the watch event that follows marks us dirty again
        await self.client.replace(
            IPPOOLS, None, views.meta_of(pool).get("name", ""), new, subresource="status"
        )
