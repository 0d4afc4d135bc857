"""The controller process: informers, leader election, restore, workers and the health server.

Every replica runs the informers, so a standby's caches are warm; only the Lease holder restores
the allocator from them and runs workers. Start-up is two-phase: every assignment the Services
show is restored into a fresh allocator *before* any Service is served, so a restart or a
failover never moves an address and writes nothing for Services that are already right.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Coroutine, Mapping
from typing import Any, TypedDict

from ccm.contract import names, views
from ccm.controller.event_metrics import EventCounts
from ccm.controller.external import ExternalIPAM, ExternalRetry
from ccm.controller.pool_sync import PoolSync
from ccm.controller.queue import WorkQueue
from ccm.controller.service_view import ServiceOptions, parse_service, requests_addresses
from ccm.controller.settings import ControllerSettings
from ccm.controller.sync import NotLeader, ServiceSync, SyncContext
from ccm.health import probes
from ccm.health.metrics import ControllerMetrics
from ccm.health.numbers import family_usage, rfc3339
from ccm.kube.client import JSON, ApiError, KubeApi, KubeClient, user_agent
from ccm.kube.events import EventRecorder
from ccm.kube.heap import release_free_memory
from ccm.kube.informer import Informer
from ccm.kube.leader import ElectionTiming, LeaderElector
from ccm.kube.packed import PackedCache
from ccm.kube.resources import IPPOOLS, LEASES, NAMESPACES, SERVICES
from ccm.kube.transform import drop_managed_fields, namespace_for_cache, service_for_cache
from pools.allocator import Allocator

log = logging.getLogger(__name__)

STATUS_SERVICE_LIMIT = 500  # /status and the page stay small on clusters with 10k Services


class ServiceRow(TypedDict):
    """One Service in /status and on the status page."""

    service: str
    addresses: list[str]
    pool: str | None
    node: str | None
    state: str
    message: str | None


class PoolRow(TypedDict):
    valid: bool
    errors: list[str]
    overlaps: list[str]
    usage: dict[str, dict[str, str]]  # family -> ccm.health.numbers.family_usage


class SpeakerRow(TypedDict):
    node: str
    holder: str | None
    renewTime: str | None


class ErrorNote(TypedDict):
    service: str
    error: str
    at: str


class Controller:
    def __init__(self, settings: ControllerSettings, client: KubeApi | None = None) -> None:
        self.settings = settings
        self.metrics = ControllerMetrics(api_grace=settings.renew_deadline)
        self.registry = self.metrics.registry
        self._client = client
        self.allocator = Allocator()
        self.restored = asyncio.Event()
        self.queue = WorkQueue()
        self._tasks: list[asyncio.Task[Any]] = []
        self._leader_tasks: list[asyncio.Task[Any]] = []
        self.last_errors: list[ErrorNote] = []
        self._heartbeat = time.monotonic()
        self.conflicts: dict[str, str] = {}

    # -- wiring ----------------------------------------------------------------------------

    @property
    def client(self) -> KubeApi:
        assert self._client is not None, "start() first"
        return self._client

    async def start(self) -> None:
        s = self.settings
        if self._client is None:
            self._client = await KubeClient.connect(
                s.kubeconfig, s.context, qps=s.qps, burst=s.burst,
                user_agent=user_agent("controller", s.identity),
            )
        previous = self.client.observer
        if previous is None:
            self.client.observer = self.metrics.api_request
        else:
            def observe(verb: str, resource: str, status: int, seconds: float) -> None:
                self.metrics.api_request(verb, resource, status, seconds)
                previous(verb, resource, status, seconds)

            self.client.observer = observe
        self.metrics.watch_pools(
            lambda: self.allocator.stats() if self.elector.is_leader() else {}
        )
        self.elector = LeaderElector(
            self.client,
            namespace=s.namespace,
            name=s.lease_name,
            identity=s.identity,
            timing=ElectionTiming(s.lease_duration, s.renew_deadline, s.retry_period),
            on_started_leading=self._started_leading,
            on_stopped_leading=self._stopped_leading,
        )
        self.recorder = EventRecorder(
            self.client, "vipam-controller", allowed=self.elector.is_leader,
            # addresses first: Events wait while Services are being allocated (kube/events.py)
            busy=lambda: len(self.queue) > 0 or self.queue.busy,
        )
        self.recorder.start()
        self.registry.register(EventCounts(self.recorder))
        # the caches keep only what is read (ccm/kube/transform.py): bench/informer_memory.py
        self.services = Informer(
            self.client, SERVICES, self._service_changed, watch_timeout=s.watch_timeout,
            transform=service_for_cache, cache=PackedCache(),
        )
        self.ippools = Informer(
            self.client, IPPOOLS, self._pool_changed, watch_timeout=s.watch_timeout,
            transform=drop_managed_fields,
        )
        self.namespaces = Informer(
            self.client, NAMESPACES, self._namespace_changed, watch_timeout=s.watch_timeout,
            transform=namespace_for_cache,
        )
        # speaker Leases, read only for /status and the status page
        self.leases = Informer(
            self.client, LEASES, namespace=s.namespace, watch_timeout=s.watch_timeout,
            transform=drop_managed_fields,
        )
        self.pool_sync = PoolSync(
            self.client, self.ippools.cache, self.recorder, self.elector.is_leader,
            s.pool_status_interval,
        )
        self.external = ExternalIPAM(
            self.client,
            namespace=s.namespace,
            cluster_id=s.cluster_id,
            grace_seconds=s.external_grace_seconds,
            pools=lambda: self.pool_sync.pools.valid,
            services=self.services.cache,
            fence=self.elector.is_leader,
            on_call=self.metrics.backend_call,
        )
        self.ctx = SyncContext(
            client=self.client,
            services=self.services.cache,
            namespace_labels=self._namespace_labels,
            allocator=self.allocator,
            recorder=self.recorder,
            options=ServiceOptions(serve_unclassed=s.serve_unclassed, compat=s.compat),
            set_load_balancer_ip=s.set_load_balancer_ip,
            fence=self.elector.is_leader,
            observer=self.metrics,
            on_freed=self._retry_waiting,
            requeue=self._requeue,
            on_usage_changed=self.pool_sync.dirty.set,
            external=self.external,
        )
        self.sync = ServiceSync(self.ctx)
        for informer in (self.services, self.ippools, self.namespaces, self.leases):
            self._spawn(informer.run(), f"informer-{informer.resource.plural}")
        self._spawn(self._heartbeat_loop(), "heartbeat")
        await asyncio.gather(
            self.services.synced.wait(), self.ippools.synced.wait(), self.namespaces.synced.wait()
        )
        self._spawn(self.elector.run(), "elector")

    def _spawn(self, coro: Coroutine[Any, Any, object], name: str, leader: bool = False) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        (self._leader_tasks if leader else self._tasks).append(task)

    async def stop(self, release: bool = True) -> None:
        """Stop workers, give the Lease up (so a standby takes over at once) and close."""
        await self._cancel(self._leader_tasks)
        if release and hasattr(self, "elector"):
            await self.elector.release()
        await self._cancel(self._tasks)
        self.queue.close()
        if hasattr(self, "recorder"):
            await self.recorder.stop()  # queued Events are written before the client closes
        if hasattr(self, "external"):
            await self.external.close()
        if self._client is not None:
            await self._client.close()

    @staticmethod
    async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        tasks.clear()

    async def __aenter__(self) -> Controller:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # -- informer callbacks: only enqueue ---------------------------------------------------

    def _service_changed(self, key: str, old: JSON | None, new: JSON | None) -> None:
        if hasattr(self, "sync"):
            if new is None:
                self.sync.forget(key)
            elif self.sync.observed(key, new) or self.sync.deferred(key, new):
                return  # our own write coming back, or decided when the running sync ends
        if self.elector.is_leader() and self.restored.is_set():
            self.queue.add(key)

    def _pool_changed(self, key: str, old: JSON | None, new: JSON | None) -> None:
        if old is not None and new is not None and _spec(old) == _spec(new):
            return  # a status-only change (often our own write)
        if not (self.elector.is_leader() and self.restored.is_set()):
            return
        self._apply_pools()
        for service in list(self.ctx.waiting):
            self.queue.add(service)

    def _namespace_changed(self, key: str, old: JSON | None, new: JSON | None) -> None:
        if old is not None and new is not None and views.labels_of(old) == views.labels_of(new):
            return
        if self.elector.is_leader() and self.restored.is_set():
            for service in list(self.services.cache):
                if service.startswith(f"{key}/"):
                    self.queue.add(service)

    def _namespace_labels(self, namespace: str) -> Mapping[str, str]:
        return views.labels_of(self.namespaces.cache.get(namespace))

    def _requeue(self, key: str) -> None:
        if self.elector.is_leader():
            self.queue.add(key)

    def _retry_waiting(self) -> None:
        for key in list(self.ctx.waiting):
            self.queue.add(key)

    # -- leadership ------------------------------------------------------------------------

    async def _started_leading(self) -> None:
        self.metrics.leader.set(1)
        self.restored.clear()
        self.allocator.reset()
        self._apply_pools()
        self._restore()
        self.restored.set()
        self._enqueue_all()
        for index in range(self.settings.workers):
            self._spawn(self._worker(), f"worker-{index}", leader=True)
        self._spawn(self.pool_sync.run_status_loop(self.allocator), "pool-status", True)
        self._spawn(
            self.external.run(self.settings.external_reconcile_seconds), "external", leader=True
        )

    async def _stopped_leading(self) -> None:
        self.metrics.leader.set(0)
        self.restored.clear()
        await self._cancel(self._leader_tasks)
        self.queue.close()
        self.queue = WorkQueue()

    def _apply_pools(self) -> None:
        """Hand the pools to the allocator; Services whose addresses fell outside every pool
        are synced again, and their sync reports it (condition and IPConflict Event)."""
        pools = self.pool_sync.refresh()
        for key, _ in self.allocator.set_pools(pools.valid.values()):
            self.ctx.waiting.add(key)
            if self.restored.is_set():
                self.queue.add(key)

    def _restore(self) -> None:
        """Phase one: put every address the Services show back into the allocator."""
        started = time.monotonic()
        options = self.ctx.options
        entries = []
        for obj in self.services.cache.values():
            namespace = views.meta_of(obj).get("namespace", "")
            view = parse_service(obj, options, self._namespace_labels(namespace))
            if view.request is None or not view.shown_ips:
                continue
            entries.append((view.request, view.shown_ips, view.allocated_from))
        report = self.allocator.restore(entries)
        for conflict in report.conflicts:
            self.ctx.waiting.add(conflict.key)
            self.conflicts[conflict.key] = conflict.message
        log.info(
            "restored %d assignments (%d conflicts, %d outside pools) in %.3fs",
            len(report.restored), len(report.conflicts), len(report.outside),
            time.monotonic() - started,
        )

    def _enqueue_all(self) -> None:
        """Services that request specific addresses first, so automatic picks cannot take them."""
        options = self.ctx.options
        cache = self.services.cache

        def order(key: str) -> tuple[int, str, str]:
            # one Service read at a time: sorting (key, object) pairs would hold every
            # Service unpacked at once, a peak the process's RSS keeps afterwards
            svc = views.service(cache[key])
            created = views.meta_of(svc).get("creationTimestamp", "")
            return (0 if requests_addresses(svc, options) else 1, created, key)

        for key in sorted(cache, key=order):
            self.queue.add(key)

    # -- workers ---------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            # a sync that needs no write never awaits anything that suspends: without this a
            # worker walking thousands of converged Services would starve the lease renewals,
            # the watches and the health server
            await asyncio.sleep(0)
            key = await self.queue.get()
            self.metrics.queue_depth.set(self.queue.depth)
            started = time.monotonic()
            result = "ok"
            try:
                await self.services.fresh.wait()
                await self.sync.sync(key)
                self.queue.forget(key)
            except NotLeader:
                result = "not_leader"
            except ExternalRetry as exc:
                result = "error"
                wait = self.queue.retry(key, exc.delay)
                self._note_error(key, str(exc))
            except ApiError as exc:
                result = "error"
                wait = self.queue.retry(key, exc.retry_after)
                self._note_error(key, str(exc))
                log.warning("sync failed: %s; retry in %.3fs", exc, wait, extra={"service": key})
            except Exception as exc:  # a bug must not stop the worker serving everyone else
                result = "error"
                wait = self.queue.retry(key)
                self._note_error(key, f"{type(exc).__name__}: {exc}")
                log.exception("sync crashed; retry in %.3fs", wait, extra={"service": key})
            finally:
                self.queue.done(key)
                self.metrics.reconcile_seconds.labels(result=result).observe(
                    time.monotonic() - started
                )

    def _note_error(self, key: str, message: str) -> None:
        self.last_errors.append({"service": key, "error": message, "at": rfc3339(time.time())})
        del self.last_errors[:-20]

    async def _heartbeat_loop(self) -> None:
        busy_since_trim = False
        idle_for = 0
        while True:
            self._heartbeat = time.monotonic()
            self.metrics.queue_depth.set(self.queue.depth)
            # after a burst, once the queue has been idle for 10 s: give the freed heap back
            # (RSS would otherwise stay at the burst's high-water mark; ccm/kube/heap.py)
            if self.queue.depth or self.queue.busy:
                busy_since_trim, idle_for = True, 0
            else:
                idle_for += 1
                if busy_since_trim and idle_for >= 10:
                    release_free_memory()
                    busy_since_trim = False
            await asyncio.sleep(1.0)

    # -- health ----------------------------------------------------------------------------

    def healthy(self) -> tuple[bool, str]:
        """Liveness: only what a restart fixes; an API outage is not (ccm.health.probes)."""
        return probes.liveness(
            heartbeat=self._heartbeat, contact=self.metrics.api_contact,
            watches={i.resource.plural: i.last_progress for i in (self.services, self.ippools)},
            watch_limit=self.settings.watch_timeout + 60,
        )

    def ready(self) -> tuple[bool, str]:
        return probes.readiness(self._ready(), self.metrics.api_contact)

    def _ready(self) -> tuple[bool, str]:
        if not self.services.synced.is_set():
            return False, "caches not synced"
        if self.elector.is_leader():
            if not self.restored.is_set():
                return False, "restoring assignments"
            down = [n for n, st in self.external.state.items() if st.healthy is False]
            detail = f"; external IPAM down: {', '.join(down)}" if down else ""
            return True, f"leader, assignments restored{detail}"
        return True, f"standby (leader: {self.elector.observed_holder or 'none'})"

    def status(self) -> dict[str, Any]:
        stats = self.allocator.stats() if self.elector.is_leader() else {}
        pools: dict[str, PoolRow] = {}
        for name in sorted(set(self.pool_sync.pools.valid) | set(self.pool_sync.pools.errors)):
            pools[name] = {
                "valid": name in self.pool_sync.pools.valid,
                "errors": self.pool_sync.pools.errors.get(name, []),
                "overlaps": self.pool_sync.pools.overlaps.get(name, []),
                "usage": {
                    family: family_usage(s.capacity, s.allocated, s.available)
                    for family, s in stats.get(name, {}).items()
                },
            }
        failures = Counter(reason for _, _, reason, _ in self.ctx.failures)
        return {
            "identity": self.settings.identity,
            "leader": self.elector.observed_holder,
            "is_leader": self.elector.is_leader(),
            "api": self.metrics.api_contact.status(),
            "restored": self.restored.is_set(),
            "queue_depth": self.queue.depth,
            "pools": pools,
            "services": self._service_rows(STATUS_SERVICE_LIMIT),
            "services_total": len(self.services.cache),
            "speakers": self._speakers(),
            "waiting": sorted(self.ctx.waiting)[:STATUS_SERVICE_LIMIT],
            "failures_by_reason": dict(failures.most_common()),
            "recent_failures": [
                {"at": rfc3339(at), "service": key, "reason": reason, "message": message}
                for at, key, reason, message in list(self.ctx.failures)[-10:]
            ],
            "external_ipam": self.external.status(),
            "last_errors": self.last_errors[-10:],
        }

    def _service_rows(self, limit: int) -> list[ServiceRow]:
        rows: list[ServiceRow] = []
        for key in sorted(self.services.cache)[:limit]:
            svc = views.service(self.services.cache[key])
            if (svc.get("spec") or {}).get("type") != "LoadBalancer":
                continue
            state: str = "pending"
            message: str | None = None
            condition = views.allocated_condition(svc)
            if condition is not None:
                state = "allocated" if condition.get("status") == "True" else str(
                    condition.get("reason")
                )
                message = None if state == "allocated" else condition.get("message")
            rows.append({
                "service": key,
                "addresses": list(views.ingress_ips(svc)),
                "pool": ",".join(views.allocated_from(svc)) or None,
                "node": views.annotations_of(svc).get(names.ANN_ANNOUNCING_NODE),
                "state": state,
                "message": message,
            })
        return rows

    def _speakers(self) -> list[SpeakerRow]:
        speakers: list[SpeakerRow] = []
        for key, obj in sorted(self.leases.cache.items()):
            name = key.split("/", 1)[-1]
            if not name.startswith(names.SPEAKER_LEASE_PREFIX):
                continue
            spec = views.lease(obj).get("spec") or {}
            speakers.append({
                "node": name[len(names.SPEAKER_LEASE_PREFIX):],
                "holder": spec.get("holderIdentity") or None,
                "renewTime": spec.get("renewTime"),
            })
        return speakers


def _spec(obj: Mapping[str, Any]) -> tuple[object, str | None]:
    """What makes a pool change matter: its spec, and whether it is being deleted."""
    pool = views.ippool(obj)
    return (pool.get("spec"), views.meta_of(pool).get("deletionTimestamp"))
