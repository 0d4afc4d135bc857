"""Which speakers are alive: one Lease per node, renewed by that node's speaker.

API cost is O(nodes) per renew period and independent of the number of Services (no Lease per
Service, the load kube-vip and Cilium users report). Every speaker watches all speaker Leases
and judges liveness on its own monotonic clock: a node is live while its Lease keeps changing
within `lease_duration` (clock skew between nodes does not matter). A speaker that cannot renew
its own Lease stops announcing after `fence_after` (< lease_duration) since its last good renew
started, so it is silent before any other node may consider it dead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from ccm.contract import names, views
from ccm.kube.client import JSON, ApiError, KubeClient
from ccm.kube.informer import Informer
from ccm.kube.leader import micro_time
from ccm.kube.resources import LEASES

log = logging.getLogger(__name__)

PREFIX = names.SPEAKER_LEASE_PREFIX


@dataclass(frozen=True)
class MembershipTiming:
    renew_interval: float = 0.5
    lease_duration: float = 1.5
    fence_after: float = 1.2

    def __post_init__(self) -> None:
        if not 0 < self.renew_interval < self.fence_after < self.lease_duration:
            raise ValueError(
                "need 0 < renew interval < fence after < lease duration, got "
                f"{self.renew_interval} / {self.fence_after} / {self.lease_duration}"
            )


class Membership:
    def __init__(
        self,
        client: KubeClient,
        *,
        namespace: str,
        node: str,
        timing: MembershipTiming | None = None,
        on_change: Callable[[], None] = lambda: None,
        on_renewed: Callable[[float], None] = lambda started: None,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.node = node
        self.timing = timing or MembershipTiming()
        self.on_change = on_change
        self.on_renewed = on_renewed  # called with the start of every successful renewal
        self._renewing = asyncio.Lock()  # one renewal at a time: both PUT on our last write
        self.informer = Informer(client, LEASES, self._lease_changed, namespace=namespace)
        self._seen: dict[str, tuple[str, float]] = {}  # node -> (renewTime, monotonic when seen)
        self._renewed_at: float | None = None
        self._joined_at: float | None = None  # first successful renew
        self._back_at: float | None = None  # last time we became live again after a lapse
        self._own: JSON | None = None  # our Lease as last written
        self.renewals = 0
        self.last_error: str | None = None
        self._live_cache: frozenset[str] = frozenset()

    @property
    def lease_name(self) -> str:
        return PREFIX + self.node

    # -- own lease -------------------------------------------------------------------------

    @property
    def renewed_at(self) -> float | None:
        """Monotonic time at which our last successful renewal began (None: none yet)."""
        return self._renewed_at

    def is_live(self) -> bool:
        """False once our own renewals have failed for `fence_after`: stop announcing."""
        if self._renewed_at is None:
            return False
        return time.monotonic() - self._renewed_at < self.timing.fence_after

    async def renew_forever(self) -> None:
        while True:
            started = time.monotonic()
            await self.renew_now()
            await asyncio.sleep(max(0.0, self.timing.renew_interval - (time.monotonic() - started)))

    async def renew_now(self) -> bool:
        """Renew at once; True if it succeeded. One at a time (``release`` waits too)."""
        async with self._renewing:
            started = time.monotonic()
            try:
                await self._renew(started)
            except ApiError as exc:
                self.last_error = str(exc)
                log.warning("speaker lease renew failed: %s", exc, extra={"node": self.node})
                return False
            return True

    async def _renew(self, started: float) -> None:
        """One write per renewal: PUT on top of our last write; GET only after a 409/404."""
        now = micro_time()
        spec = {
            "holderIdentity": self.node,
            "leaseDurationSeconds": max(1, round(self.timing.lease_duration)),
            "renewTime": now,
        }
        lease = self._own
        if lease is None:
            try:
                lease = await self.client.get(LEASES, self.namespace, self.lease_name)
            except ApiError as exc:
                if not exc.not_found:
                    raise
        if lease is None:
            body: JSON = {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.lease_name, "namespace": self.namespace,
                             "labels": {"app.kubernetes.io/component": "speaker"}},
                "spec": {**spec, "acquireTime": now},
            }
            self._own = await self.client.create(LEASES, self.namespace, body)
        else:
            lease.setdefault("spec", {}).update(spec)
            try:
                self._own = await self.client.replace(
                    LEASES, self.namespace, self.lease_name, lease
                )
            except ApiError as exc:
                if exc.conflict or exc.not_found:
                    self._own = None  # someone else wrote it; re-read next time
                raise
        was_live = self.is_live()
        self._renewed_at = started
        if self._joined_at is None:
            self._joined_at = started
        elif not was_live:
            self._back_at = started  # see live_nodes
        self.renewals += 1
        self.last_error = None
        self.on_renewed(started)
        if not was_live:
            self.on_change()

    def settled(self) -> bool:
        """True once we have been renewing for a lease duration: by then every live speaker has
        renewed at least once while we watched, so our view of who is live is complete. Before
        that, two speakers starting together would each see only itself and both announce."""
        if self._joined_at is None:
            return False
        return time.monotonic() - self._joined_at >= self.timing.lease_duration

    async def release(self) -> None:
        """Clean shutdown: empty the holder so peers take over at once, not after expiry."""
        async with self._renewing:  # a renewal in flight would otherwise undo the release
            self._renewed_at = None
            await self._release()

    async def _release(self) -> None:
        """One PUT on top of our last write (a GET first only if we have none or it is stale):
        every round trip here delays the peers' takeover of a cleanly stopping node."""
        lease, self._own = self._own, None
        for _ in range(2):
            try:
                if lease is None:
                    lease = await self.client.get(LEASES, self.namespace, self.lease_name)
                lease.setdefault("spec", {}).update(holderIdentity="", renewTime=micro_time())
                await self.client.replace(LEASES, self.namespace, self.lease_name, lease)
                return
            except ApiError as exc:
                if not exc.conflict:
                    log.warning("speaker lease not released: %s", exc)
                    return
                lease = None
        log.warning("speaker lease not released: it kept changing under us")

    # -- everyone's leases -----------------------------------------------------------------

    def _lease_changed(self, key: str, old: JSON | None, new: JSON | None) -> None:
        name = key.split("/", 1)[-1]
        if not name.startswith(PREFIX):
            return
        node = name[len(PREFIX):]
        spec = cast(views.Lease, new or {}).get("spec") or {}
        if new is None or not spec.get("holderIdentity"):
            self._seen.pop(node, None)
        else:
            # a renewal moves renewTime: the node stays live, which changes no plan (_check
            # re-plans only when the set of live nodes changes)
            renew = spec.get("renewTime", "")
            previous = self._seen.get(node)
            if previous is None or previous[0] != renew:
                self._seen[node] = (renew, time.monotonic())
        self._check()

    def live_nodes(self) -> frozenset[str]:
        """Nodes whose speaker renewed within the lease duration (as we observed it).

        Back from a lapse (cut off from the API, fenced), our watch may not have caught up
        yet: for a lease duration, a peer we have not heard from since counts as live, so we
        take back our own addresses at once but never a live peer's."""
        now = time.monotonic()
        duration = self.timing.lease_duration
        back = self._back_at if self._back_at is not None else -duration
        doubt = now - back < duration
        live = {
            node for node, (_, seen) in self._seen.items()
            if now - seen < duration or (doubt and seen <= back)
        }
        if self.is_live():
            live.add(self.node)
        else:
            live.discard(self.node)
        return frozenset(live)

    def recently_expired(self, within: float) -> dict[str, float]:
        """Nodes whose Lease expired (not released) less than ``within`` s ago: node -> the
        monotonic time it expired on our clock. Their addresses may still answer until their
        kernel lifetime runs out (``fencing``)."""
        now = time.monotonic()
        expired = {
            node: seen + self.timing.lease_duration for node, (_, seen) in self._seen.items()
            if node != self.node
        }
        return {node: at for node, at in expired.items() if 0 <= now - at < within}

    def _check(self) -> None:
        live = self.live_nodes() if self.settled() else frozenset()
        if live != self._live_cache:
            came, went = sorted(live - self._live_cache), sorted(self._live_cache - live)
            log.info("live speakers: %d%s%s", len(live), "".join(f" +{n}" for n in came),
                     "".join(f" -{n}" for n in went))
            self._live_cache = live
            self.on_change()

    async def watch_expiry(self) -> None:
        """Leases expire silently (a dead node writes nothing): look often enough to notice."""
        while True:
            self._check()
            await asyncio.sleep(min(0.1, self.timing.renew_interval / 4))

    def status(self) -> dict[str, object]:
        now = time.monotonic()
        return {
            "node": self.node,
            "live": self.is_live(),
            "renewals": self.renewals,
            "last_error": self.last_error,
            "peers": {
                node: {"renewTime": renew, "seen_seconds_ago": round(now - seen, 3)}
                for node, (renew, seen) in sorted(self._seen.items())
            },
        }
