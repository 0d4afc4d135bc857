"""Leader election on a coordination.k8s.io/v1 Lease, with self-fencing.

Why our own and not kubernetes_asyncio's: that one stops for good after one lost term, writes
naive local time into the Lease and measures expiry with the wall clock. Here:

* Expiry of someone else's lease is judged on *our* monotonic clock: a lease is free only when
  it has not changed for `lease_duration` since we last saw it change (client-go's rule), so
  clock skew between replicas cannot cut a term short.
* A leader fences itself: `is_leader()` turns false as soon as `renew_deadline` has passed since
  the start of the last successful renew, which is before any standby may take over
  (renew_deadline < lease_duration). Writers check it immediately before every write.
* Losing the lease is not fatal: the elector goes back to campaigning.
* `release()` on graceful shutdown empties the holder so a standby takes over at its next retry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ccm.kube.client import JSON, ApiError, KubeApi
from ccm.kube.resources import LEASES

log = logging.getLogger(__name__)


def micro_time(moment: datetime | None = None) -> str:
    """A metav1.MicroTime: RFC 3339 in UTC with microseconds."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ElectionTiming:
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "need 0 < retry period < renew deadline < lease duration, got "
                f"{self.retry_period} / {self.renew_deadline} / {self.lease_duration}"
            )


class LeaderElector:
    def __init__(
        self,
        client: KubeApi,
        *,
        namespace: str,
        name: str,
        identity: str,
        timing: ElectionTiming | None = None,
        on_started_leading: Callable[[], Awaitable[None]] | None = None,
        on_stopped_leading: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timing = timing or ElectionTiming()
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self._clock = clock  # monotonic seconds; a test steps its own instead of waiting
        self._renewed_at: float | None = None  # monotonic start of the last successful renew
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self.observed_holder: str | None = None
        self.transitions = 0
        self.changed = asyncio.Event()

    # -- the fence -------------------------------------------------------------------------

    def is_leader(self) -> bool:
        if self._renewed_at is None:
            return False
        return self._clock() - self._renewed_at < self.timing.renew_deadline

    # -- campaign loop ---------------------------------------------------------------------

    async def run(self) -> None:
        """Campaign, lead, and campaign again after a loss; runs until cancelled."""
        while True:
            await self._acquire()
            log.info("became leader of lease %s/%s", self.namespace, self.name)
            self._notify()
            if self.on_started_leading:
                await self.on_started_leading()
            await self._renew_until_lost()
            log.warning("lost leadership of lease %s/%s", self.namespace, self.name)
            self._notify()
            if self.on_stopped_leading:
                await self.on_stopped_leading()

    def _notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def _acquire(self) -> None:
        while True:
            if await self._try_acquire_or_renew():
                return
            await asyncio.sleep(self.timing.retry_period)

    async def _renew_until_lost(self) -> None:
        while True:
            await asyncio.sleep(self.timing.retry_period)
            deadline = (self._renewed_at or 0) + self.timing.renew_deadline
            while not await self._try_acquire_or_renew():
                if self._clock() >= deadline:
                    self._renewed_at = None
                    return
                await asyncio.sleep(min(self.timing.retry_period / 4, 0.5))
            if not self.is_leader():
                # the renew succeeded only after the deadline had already fenced us
                self._renewed_at = None
                return

    async def _try_acquire_or_renew(self) -> bool:
        started = self._clock()
        now = micro_time()
        try:
            lease = await self.client.get(LEASES, self.namespace, self.name)
        except ApiError as exc:
            if not exc.not_found:
                log.debug("lease read failed: %s", exc)
                return False
            return await self._create(started, now)
        spec = lease.setdefault("spec", {})
        holder = spec.get("holderIdentity") or ""
        self.observed_holder = holder or None
        seen = (holder, str(spec.get("renewTime", "")))
        if seen != self._observed:
            self._observed = seen
            self._observed_at = started
        if holder and holder != self.identity:
            duration = float(spec.get("leaseDurationSeconds") or self.timing.lease_duration)
            if started - self._observed_at < duration:
                return False
        if holder != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec["holderIdentity"] = self.identity
        spec["leaseDurationSeconds"] = round(self.timing.lease_duration)
        spec["renewTime"] = now
        try:
            updated = await self.client.replace(LEASES, self.namespace, self.name, lease)
        except ApiError as exc:
            log.debug("lease update failed: %s", exc)
            return False
        self._record_success(updated, started)
        return True

    async def _create(self, started: float, now: str) -> bool:
        body: JSON = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": round(self.timing.lease_duration),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            },
        }
        try:
            created = await self.client.create(LEASES, self.namespace, body)
        except ApiError as exc:
            log.debug("lease create failed: %s", exc)
            return False
        self._record_success(created, started)
        return True

    def _record_success(self, lease: JSON, started: float) -> None:
        spec = lease.get("spec") or {}
        self._renewed_at = started
        self._observed = (str(spec.get("holderIdentity", "")), str(spec.get("renewTime", "")))
        self._observed_at = started
        self.observed_holder = self.identity
        self.transitions = int(spec.get("leaseTransitions") or 0)

    async def release(self) -> None:
        """Give the lease up (graceful shutdown) so a standby need not wait for it to expire."""
        if not self.is_leader():
            return
        self._renewed_at = None
        try:
            lease = await self.client.get(LEASES, self.namespace, self.name)
            spec = lease.setdefault("spec", {})
            if spec.get("holderIdentity") != self.identity:
                return
            spec["holderIdentity"] = ""
            spec["leaseDurationSeconds"] = 1
            spec["renewTime"] = micro_time()
            await self.client.replace(LEASES, self.namespace, self.name, lease)
            log.info("released lease %s/%s", self.namespace, self.name)
        except ApiError as exc:
            log.warning("could not release lease: %s", exc)
