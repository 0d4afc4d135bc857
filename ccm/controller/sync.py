"""One idempotent, level-triggered sync per Service: read, decide, write what differs.

`sync(key)` can run any number of times for any key in any state and converges: it never
assumes what happened before, only compares the Service as it is with what the allocator decides.
Every write is a merge patch of what differs, carrying the object's resourceVersion, so a
concurrent change makes it fail with 409 instead of being overwritten; we then re-read and
decide again. (Patches, not PUTs: the cache holds only the fields we read, see
ccm/kube/transform.py, and a PUT would erase the rest.)
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ccm.contract import names, views
from ccm.contract.views import Service
from ccm.controller import desired
from ccm.controller.advice import event_message, with_advice
from ccm.controller.external import ExternalRetry
from ccm.controller.service_view import ServiceOptions, ServiceView, parse_service
from ccm.kube.client import JSON, ApiError, KubeApi
from ccm.kube.events import EventRecorder
from ccm.kube.patches import guarded, merge_diff
from ccm.kube.resources import SERVICES
from ccm.kube.transform import service_for_cache
from pools.allocator import Allocator, AskExternal, Assigned, Assignment, Failed
from pools.external import BackendError

log = logging.getLogger(__name__)

MAX_CONFLICT_RETRIES = 4


class NotLeader(Exception):
    """Raised instead of a write when this replica may not write (lost or never had the lease)."""


class ExternalAllocator(Protocol):
    """Obtains addresses from an external IPAM for a pool with `spec.external` (see external.py)."""

    cluster_id: str

    async def allocate(self, view: ServiceView, ask: AskExternal) -> tuple[str, ...]: ...

    async def release(self, key: str, uid: str, ips: tuple[str, ...], pools: str) -> None: ...

    async def release_unrecorded(self, key: str, uid: str) -> None: ...


class SyncObserver(Protocol):
    def allocation(self, result: str) -> None: ...


@dataclass
class SyncContext:
    """What a sync needs; built once by the manager."""

    client: KubeApi
    services: Mapping[str, JSON]  # the informer cache
    namespace_labels: Callable[[str], Mapping[str, str]]
    allocator: Allocator  # one for the life of the process, reset on leadership change
    recorder: EventRecorder
    options: ServiceOptions
    set_load_balancer_ip: bool
    fence: Callable[[], bool]
    observer: SyncObserver | None = None
    external: ExternalAllocator | None = None
    waiting: set[str] = field(default_factory=set)  # failed or in conflict; retried on changes
    on_freed: Callable[[], None] = lambda: None  # addresses were freed: retry `waiting`
    requeue: Callable[[str], None] = lambda key: None  # sync this Service again (it lost)
    on_usage_changed: Callable[[], None] = lambda: None  # pool usage moved: refresh status
    failures: deque[tuple[float, str, str, str]] = field(
        default_factory=lambda: deque(maxlen=50)
    )  # (time, service, reason, message), newest last, for /status and the status page


class ServiceSync:
    def __init__(self, ctx: SyncContext) -> None:
        self.ctx = ctx
        # our last write per key (trimmed as the cache is), until the cache has caught up
        self._written: dict[str, Service] = {}
        # keys being synced -> the newest resourceVersion the watch brought meanwhile ("" if
        # none): decided when that sync ends (see `deferred`)
        self._busy: dict[str, str] = {}

    # -- entry point -----------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        self._busy[key] = ""
        completed = False
        try:
            await self._sync(key)
            completed = True
        finally:
            seen = self._busy.pop(key, "")
            # a change that arrived while this sync ran and is newer than what it left behind
            # (our own writes coming back are not): sync again
            if completed and seen and not self._covers(key, seen):
                self.ctx.requeue(key)

    def deferred(self, key: str, obj: Mapping[str, Any]) -> bool:
        """The watch brought a new version of a Service that is being synced right now: note it
        and let the end of that sync decide (True). The watch often delivers our own write
        before the write's reply has reached the sync, so it cannot be recognized yet."""
        if key not in self._busy:
            return False
        rv = _rv(obj)
        if not self._busy[key] or _rv_newer(rv, self._busy[key]):
            self._busy[key] = rv
        return True

    def _covers(self, key: str, rv: str) -> bool:
        """Whether our last write is at least as new as version `rv` of the Service."""
        mine = self._written.get(key)
        return mine is not None and not _rv_newer(rv, _rv(mine))

    async def _sync(self, key: str) -> None:
        obj = self._current(key)
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                await self._sync_object(key, obj)
                return
            except ApiError as exc:
                if not exc.conflict:
                    raise
                log.info("conflict writing %s; re-reading", key, extra={"service": key})
                obj = await self._fetch(key)
        raise ApiError(409, "Conflict", f"{key}: still conflicting after retries")

    def _current(self, key: str) -> Service | None:
        found = self.ctx.services.get(key)
        cached = None if found is None else views.service(found)
        mine = self._written.get(key)
        if mine is None:
            return cached
        if cached is None or _newer(mine, cached):
            return mine
        del self._written[key]
        return cached

    async def _fetch(self, key: str) -> Service | None:
        namespace, name = key.split("/", 1)
        try:
            return views.service(await self.ctx.client.get(SERVICES, namespace, name))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    async def _sync_object(self, key: str, obj: Service | None) -> None:
        """Read, claim what the Service shows, decide, carry the decision out: one way."""
        allocator = self.ctx.allocator
        if obj is None:
            self._forget(key)
            released = allocator.release(key)
            if released:
                self._released(key, released)
            return
        view = parse_service(obj, self.ctx.options, self.ctx.namespace_labels(obj_ns(obj)))
        if not view.served:
            await self._release(obj, view)
            return
        self.ctx.waiting.discard(key)
        if view.error is not None:
            await self._fail(obj, view, Failed("InvalidRequest", view.error))
            return
        assert view.request is not None
        if allocator.lookup(key) is None and view.shown_ips:
            if not await self._claim_shown(obj, view):
                return
        # at most one backend round per family, then the answer must be an assignment
        for _ in range(len(view.request.families) + 1):
            decision = allocator.allocate(view.request)
            if isinstance(decision, Assigned):
                await self._apply(obj, view, decision.assignment)
                return
            if isinstance(decision, Failed):
                await self._fail(obj, view, decision)
                return
            answered = await self._ask_external(obj, view, decision)
            if answered is None:
                return
            obj = answered
        await self._fail(obj, view, Failed("ExternalPool", "external IPAM answered no address"))

    # -- deciding --------------------------------------------------------------------------

    async def _claim_shown(self, obj: Service, view: ServiceView) -> bool:
        """The Service shows addresses the allocator does not attribute to it: claim them.

        This is how a restart (or a conflict that has since cleared) restores an assignment.
        Whoever lost an address to the claim is synced again at once, so two Services never
        both show one address as allocated; a Service whose shown address is held by an older
        one stays in conflict and is never silently given a different address.
        """
        assert view.request is not None
        claim = self.ctx.allocator.claim(view.request, view.shown_ips, view.allocated_from)
        for lost in claim.evicted:
            self.ctx.waiting.add(lost.key)
            log.warning("conflict: %s", lost.message,
                        extra={"service": lost.key, "reason": names.REASON_CONFLICT})
            self.ctx.requeue(lost.key)
        if claim.conflict is None:
            return True
        self.ctx.waiting.add(view.key)
        message = claim.conflict.message
        new = desired.with_failure(obj, names.REASON_CONFLICT, message)
        if new is None:
            return False  # already reported
        self._observe("conflict")
        log.warning("conflict: %s", message,
                    extra={"service": view.key, "reason": names.REASON_CONFLICT})
        self.ctx.recorder.emit(obj, "Warning", names.REASON_CONFLICT, message)
        await self._write_status(obj, new)
        return False

    async def _ask_external(
        self, obj: Service, view: ServiceView, ask: AskExternal
    ) -> Service | None:
        """Record the key on the Service, ask the backend, adopt its answer; the updated object,
        or None when the Service was reported as failed."""
        external = self.ctx.external
        if external is None:
            await self._fail(obj, view, Failed(
                "ExternalPool",
                f"pool {ask.pool} uses an external IPAM, which is not configured here",
            ))
            return None
        assert view.request is not None
        keyed = desired.with_external_key(obj, f"{external.cluster_id}/{view.uid}")
        if keyed is not None:
            obj = await self._write(obj, keyed)
        try:
            ips = await external.allocate(view, ask)
        except BackendError as exc:
            message = f"external IPAM of pool {ask.pool} failed: {exc.reason}: {exc.message}"
            await self._fail(obj, view, Failed("ExternalPool", message))
            # retried with backoff whatever the reason: the IPAM is shared with the rest of the
            # network, so a full prefix or a fixed token can change without any event we see
            raise ExternalRetry(message, exc.retry_after) from exc
        adopted = self.ctx.allocator.adopt(view.request, ips, ask.pool)
        if isinstance(adopted, Failed):
            await self._fail(obj, view, adopted)
            return None
        return obj

    # -- writing ---------------------------------------------------------------------------

    async def _apply(self, obj: Service, view: ServiceView, assignment: Assignment) -> None:
        pools = ",".join(dict.fromkeys(p for p in assignment.pools if p))
        adopted = bool(view.shown_ips) and set(view.shown_ips) == set(assignment.ips)
        main = desired.with_allocation(obj, assignment.ips, pools, self.ctx.set_load_balancer_ip,
                                       adopted=adopted)
        if main is not None:
            obj = await self._write(obj, main)
        shown_before = view.shown_ips
        message = ", ".join(
            f"{ip} from pool {pool}" if pool else ip
            for ip, pool in zip(assignment.ips, assignment.pools, strict=True)
        )
        outside = [ip for ip, pool in zip(assignment.ips, assignment.pools, strict=True)
                   if not pool]
        if outside:
            await self._keep_outside(obj, view, assignment.ips, outside)
        else:
            status = desired.with_status(obj, assignment.ips, f"allocated {message}")
            if status is not None:
                obj = await self._write_status(obj, status)
        allocator = self.ctx.allocator
        if allocator.retiring(view.key):
            allocator.finish_retire(view.key)
            self._wake_waiting()
        if set(shown_before) != set(assignment.ips):
            self.ctx.on_usage_changed()
            self._observe("allocated")
            log.info("allocated %s", message,
                     extra={"service": view.key, "reason": names.REASON_ALLOCATED})
            self.ctx.recorder.emit(
                obj, "Normal", names.REASON_ALLOCATED, f"Assigned {message}"
            )

    async def _keep_outside(
        self, obj: Service, view: ServiceView, ips: tuple[str, ...], outside: list[str]
    ) -> None:
        """Addresses the Service shows that no pool contains: kept (never moved), reported.

        Happens when a pool shrinks or goes, or when a Service is adopted from another
        controller whose pools were not all migrated. The condition and an IPConflict Event
        say so; no `vipam.io/allocated-from` claims a pool; the Service waits, so a pool
        that covers the address again makes it allocated.
        """
        self.ctx.waiting.add(view.key)
        text = ", ".join(outside)
        message = (
            f"{text} is outside every IPPool: Service {view.key} keeps it, but no pool "
            f"accounts for it and no advertisement announces it; add an IPPool that contains "
            f"it, or remove it from the Service (delete and recreate the Service) to get a "
            f"pool address"
        )
        status = desired.with_status(
            obj, ips, message, state="False", reason=names.REASON_CONFLICT
        )
        if status is None:
            return  # already reported
        self._observe("conflict")
        log.warning("conflict: %s", message,
                    extra={"service": view.key, "reason": names.REASON_CONFLICT})
        self.ctx.recorder.emit(obj, "Warning", names.REASON_CONFLICT, message)
        await self._write_status(obj, status)

    async def _fail(self, obj: Service, view: ServiceView, failure: Failed) -> None:
        self.ctx.waiting.add(view.key)
        message = with_advice(failure.reason, failure.message)
        new = desired.with_failure(obj, failure.reason, message)
        if new is None:
            return  # already reported; nothing changed
        self._observe("failed")
        self.ctx.failures.append((time.time(), view.key, failure.reason, message))
        log.warning("allocation failed: %s: %s", failure.reason, message,
                    extra={"service": view.key, "reason": failure.reason})
        self.ctx.recorder.emit(
            obj, "Warning", names.REASON_FAILED, event_message(failure.reason, message)
        )
        await self._write_status(obj, new)

    async def _release(self, obj: Service, view: ServiceView) -> None:
        """Clear what we wrote, free the address, remove the finalizer last."""
        self.ctx.waiting.discard(view.key)
        allocator = self.ctx.allocator
        held = allocator.lookup(view.key)
        if not view.ours and held is None:
            return
        status = desired.without_status(obj) if (view.ours or held) else None
        if status is not None:
            obj = await self._write_status(obj, status)
        if held is None and self.ctx.external is not None and (
                names.ANN_EXTERNAL_KEY in views.annotations_of(obj)):
            # asked an IPAM, but the answer never reached the allocator (a restart between the
            # IPAM's commit and our record): whatever it holds for this Service goes back now,
            # before the finalizer does, not only at the reconcile after the grace period
            await self.ctx.external.release_unrecorded(view.key, view.uid)
        main = desired.without_allocation(obj)
        if main is not None:
            await self._write(obj, main)
        released = allocator.release(view.key)
        if released:
            if self.ctx.external is not None:
                # back in the IPAM before anyone waiting is retried, or they find it still full
                pools = (held.pools if held else ()) or ()
                await self.ctx.external.release(
                    view.key, view.uid, tuple(released), ",".join(p for p in pools if p)
                )
            self._released(view.key, released)
            self.ctx.recorder.emit(
                obj, "Normal", names.REASON_RELEASED, f"Released {', '.join(released)}"
            )

    def _released(self, key: str, ips: tuple[str, ...]) -> None:
        self.ctx.on_usage_changed()
        self._observe("released")
        log.info("released %s", ", ".join(ips),
                 extra={"service": key, "reason": names.REASON_RELEASED})
        self._wake_waiting()

    def _wake_waiting(self) -> None:
        """Freed addresses may unblock Services that failed or were in conflict."""
        self.ctx.on_freed()

    def forget(self, key: str) -> None:
        """The Service is gone from the cache: drop what we remember of our own writes."""
        self._forget(key)

    def observed(self, key: str, obj: Mapping[str, Any]) -> bool:
        """The cache has a new version of the Service: a write of ours it has caught up with
        is forgotten now, not at the next sync of that key (which may never come).

        True when this version needs no sync: it is our own last write, or older than it. Our
        last write carried a resourceVersion precondition and was decided on a version at
        least as new as anything before it, so a sync of either would only find nothing to do
        (a sync that fails after writing is retried by the queue, not by these events)."""
        mine = self._written.get(key)
        if mine is None:
            return False
        if _newer(mine, obj):
            return True
        del self._written[key]
        return _rv(mine) == _rv(obj)

    def _forget(self, key: str) -> None:
        self._written.pop(key, None)
        self.ctx.waiting.discard(key)

    async def _write(self, obj: Service, new: Service) -> Service:
        """metadata and spec of `new`, as a patch of what differs from `obj`."""
        changed = {k: v for k, v in merge_diff(obj, new).items() if k in ("metadata", "spec")}
        return await self._patch(obj, changed, None)

    async def _write_status(self, obj: Service, new: Service | None) -> Service:
        if new is None:
            return obj
        changed = {k: v for k, v in merge_diff(obj, new).items() if k == "status"}
        return await self._patch(obj, changed, "status")

    async def _patch(
        self, obj: Service, changed: dict[str, Any], subresource: str | None
    ) -> Service:
        if not changed:
            return obj
        if not self.ctx.fence():
            raise NotLeader("not the leader")
        meta = views.meta_of(obj)
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        result = views.service(service_for_cache(await self.ctx.client.patch(
            SERVICES, namespace, name,
            guarded(changed, meta.get("resourceVersion", "")), subresource=subresource,
        )))
        self._written[f"{namespace}/{name}"] = result
        return result

    def _observe(self, result: str) -> None:
        if self.ctx.observer is not None:
            self.ctx.observer.allocation(result)


def obj_ns(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace", ""))


def _rv(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _newer(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether `a` is a later version of the object than `b` (resourceVersions are numbers here)."""
    return _rv_newer(_rv(a), _rv(b))


def _rv_newer(ra: str, rb: str) -> bool:
    if ra.isdigit() and rb.isdigit():
        return int(ra) > int(rb)
    return False
