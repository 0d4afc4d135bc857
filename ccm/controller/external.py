"""Pools backed by an external IPAM (http or NetBox): allocation, release and reconciliation.

Safety rests on the backend's idempotency key (cluster id + Service uid + family):

* before the first backend call for a Service, the sync writes the finalizer and the key
  annotation on the Service, so a deletion is always seen and the address always has an owner
  record on both sides;
* `allocate` with a key that already holds an address returns that address, so a controller that
  crashed between the backend's answer and the Service write gets the same address again;
* `reconcile` lists what the backend holds for this cluster and releases addresses whose
  Service is gone, after a grace period (a Service may be in the middle of being created).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypedDict

from ccm.contract import views
from ccm.controller.service_view import ServiceView
from ccm.kube.client import JSON, ApiError, KubeApi
from ccm.kube.resources import SECRETS
from pools.allocator import AskExternal
from pools.external import (
    AllocationKey,
    BackendError,
    CallObserver,
    IPAMBackend,
    RetryPolicy,
    backend_for,
)
from pools.model import Pool, SecretRef

log = logging.getLogger(__name__)


class ExternalRetry(Exception):
    """A transient backend failure: the sync reports it and the worker retries with backoff."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


@dataclass
class BackendState:
    healthy: bool | None = None
    error: str | None = None
    checked_at: float | None = None
    orphans: dict[str, float] = field(default_factory=dict)  # ip -> first seen without owner
    # the backend's Retry-After: no allocation is sent before this (monotonic), whoever asks
    not_before: float = 0.0
    refusal: BackendError | None = None  # the answer that set it, repeated until then


class BackendReport(TypedDict):
    """One external pool's backend in /status and on the status page."""

    healthy: bool | None
    error: str | None
    checked_at: float | None
    orphans_pending: int


class ExternalIPAM:
    def __init__(
        self,
        client: KubeApi,
        *,
        namespace: str,
        cluster_id: str,
        grace_seconds: float,
        pools: Callable[[], Mapping[str, Pool]],
        services: Mapping[str, JSON],
        fence: Callable[[], bool],
        on_call: CallObserver | None = None,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.cluster_id = cluster_id
        self.grace_seconds = grace_seconds
        self.pools = pools
        self.services = services
        self.fence = fence
        self.on_call = on_call
        self._backends: dict[str, tuple[str, IPAMBackend]] = {}  # pool -> (spec json, backend)
        self.state: dict[str, BackendState] = {}

    # -- backends --------------------------------------------------------------------------

    async def backend(self, pool_name: str) -> IPAMBackend:
        pool = self.pools().get(pool_name)
        if pool is None or pool.spec.external is None:
            raise BackendError("NotFound", f"pool {pool_name} is not an external pool")
        spec = pool.spec.external
        fingerprint = spec.model_dump_json()
        cached = self._backends.get(pool_name)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        token = await self._token(pool_name, spec.secret_ref)
        try:
            # a short budget per call: the work queue's backoff does the long-term retrying, and
            # a worker must not stall for long on a dead backend while other Services wait
            retry = RetryPolicy(attempts=2, total_seconds=2 * spec.timeout_seconds + 1)
            backend = backend_for(spec, token, name=pool_name, on_call=self.on_call,
                                  retry=retry)
        except ValueError as exc:
            raise BackendError("Rejected", f"pool {pool_name}: {exc}", retryable=False) from exc
        if cached is not None:
            await cached[1].close()
        self._backends[pool_name] = (fingerprint, backend)
        return backend

    async def _token(self, pool_name: str, ref: SecretRef | None) -> str | None:
        if ref is None:
            return None
        namespace = ref.namespace or self.namespace
        if namespace != self.namespace:
            # RBAC lets the controller read Secrets only in its own namespace (an IPPool is
            # cluster-scoped: a wider grant would let any pool author exfiltrate any Secret)
            raise BackendError(
                "Unauthorized", f"pool {pool_name}: secretRef must be in namespace "
                f"{self.namespace}, not {namespace}", retryable=False,
            )
        try:
            secret = views.secret(await self.client.get(SECRETS, namespace, ref.name))
        except ApiError as exc:
            raise BackendError(
                "Unauthorized", f"pool {pool_name}: cannot read Secret {namespace}/{ref.name}: "
                f"{exc.reason}", retryable=exc.status in (0, 429) or exc.status >= 500,
            ) from exc
        data = secret.get("data") or {}
        if ref.key in data:
            return base64.b64decode(data[ref.key]).decode().strip()
        string_data = secret.get("stringData") or {}
        if ref.key in string_data:
            return str(string_data[ref.key]).strip()
        raise BackendError(
            "Unauthorized", f"pool {pool_name}: Secret {namespace}/{ref.name} has no key "
            f"{ref.key!r}", retryable=False,
        )

    async def close(self) -> None:
        for _, backend in self._backends.values():
            await backend.close()
        self._backends.clear()

    # -- allocation (called by the sync, after it recorded the key on the Service) ----------

    def key_for(self, uid: str, family: str) -> AllocationKey:
        return AllocationKey(self.cluster_id, uid, family)  # type: ignore[arg-type]

    async def allocate(self, view: ServiceView, ask: AskExternal) -> tuple[str, ...]:
        assert view.request is not None
        state = self.state.setdefault(ask.pool, BackendState())
        wait = state.not_before - time.monotonic()
        if wait > 0 and state.refusal is not None:
            # the Service's own failure-status write syncs it again at once; the IPAM asked us
            # to stay away: answer as it did (same message, so nothing new is written)
            refusal = state.refusal
            raise BackendError(refusal.reason, refusal.message, status=refusal.status,
                               retry_after=wait)
        try:
            backend = await self.backend(ask.pool)
            ips = []
            for family in ask.families:
                requested = next(
                    (ip for ip in view.request.requested_ips
                     if (":" in ip) == (family == "IPv6")), None,
                )
                ips.append(await backend.allocate(
                    self.key_for(view.uid, family), service=view.key,
                    dns_name=f"{view.name}.{view.namespace}", requested_ip=requested,
                ))
        except BackendError as exc:
            state.healthy, state.error = False, str(exc)
            if exc.retry_after:
                state.not_before, state.refusal = time.monotonic() + exc.retry_after, exc
            raise
        state.healthy, state.error = True, None
        return tuple(ips)

    async def release(self, key: str, uid: str, ips: tuple[str, ...], pools: str) -> None:
        """Best effort: what fails here is released later by `reconcile` (owner gone)."""
        for pool_name in [p for p in pools.split(",") if p]:
            pool = self.pools().get(pool_name)
            if pool is None or pool.spec.external is None:
                continue
            try:
                backend = await self.backend(pool_name)
                for ip in ips:
                    family = "IPv6" if ":" in ip else "IPv4"
                    await backend.release(self.key_for(uid, family), ip)
            except BackendError as exc:
                log.warning("release in %s failed (reconcile will retry): %s", pool_name, exc,
                            extra={"service": key})

    async def release_unrecorded(self, key: str, uid: str) -> None:
        """Release whatever any external pool holds for the Service `uid` when we have no record
        of what it was given (the Service is going; best effort, as `release`)."""
        for pool_name, pool in self.pools().items():
            if pool.spec.external is None:
                continue
            try:
                backend = await self.backend(pool_name)
                for held in await backend.list(self.cluster_id):
                    if held.key is not None and held.key.service_uid == uid:
                        await backend.release(held.key, held.ip)
                        log.info("released %s in %s (no record of it survived a restart)",
                                 held.ip, pool_name, extra={"service": key})
            except BackendError as exc:
                log.warning("release in %s failed (reconcile will retry): %s", pool_name, exc,
                            extra={"service": key})

    # -- reconciliation --------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Release backend addresses whose Service is gone (after the grace period)."""
        owners = {views.meta_of(svc).get("uid", "") for svc in self.services.values()}
        now = time.monotonic()
        for name, pool in self.pools().items():
            if pool.spec.external is None:
                continue
            state = self.state.setdefault(name, BackendState())
            try:
                backend = await self.backend(name)
                held = await backend.list(self.cluster_id)
                state.healthy, state.error, state.checked_at = True, None, time.time()
            except BackendError as exc:
                state.healthy, state.error, state.checked_at = False, str(exc), time.time()
                continue
            seen: set[str] = set()
            for address in held:
                if address.key is None or address.key.service_uid in owners:
                    continue
                seen.add(address.ip)
                first = state.orphans.setdefault(address.ip, now)
                if now - first < self.grace_seconds or not self.fence():
                    continue
                try:
                    await backend.release(address.key, address.ip)
                    log.info("released orphaned %s in %s (owner %s gone)", address.ip, name,
                             address.service)
                    state.orphans.pop(address.ip, None)
                except BackendError as exc:
                    log.warning("orphan %s in %s not released: %s", address.ip, name, exc)
            for ip in list(state.orphans):
                if ip not in seen:
                    del state.orphans[ip]

    async def run(self, interval: float) -> None:
        while True:
            try:
                await self.reconcile()
            except Exception:  # the loop must survive a bug in one round
                log.exception("external IPAM reconcile failed")
            await asyncio.sleep(interval)

    def status(self) -> dict[str, BackendReport]:
        return {
            name: {"healthy": s.healthy, "error": s.error, "checked_at": s.checked_at,
                   "orphans_pending": len(s.orphans)}
            for name, s in self.state.items()
        }
