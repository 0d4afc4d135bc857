"""The contract every external IPAM backend keeps, and the pieces they share.

The controller talks to an IPAM it does not control, over a network that drops requests. Two rules
make that safe, and every backend follows them:

* every allocation carries an `AllocationKey` (cluster id + Service uid + family), and allocating
  with a key that already holds an address returns that address, so a retry after a lost reply,
  or after a controller crash, can never produce a second address;
* `list(cluster_id)` returns everything the backend holds for our cluster, so the controller can
  reconcile (release what no Service owns, adopt what a Service owns but never recorded).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, get_args

Family = Literal["IPv4", "IPv6"]
FAMILIES: tuple[Family, ...] = get_args(Family)

Reason = Literal["Unavailable", "Timeout", "Exhausted", "Rejected", "Unauthorized", "NotFound"]
REASONS: tuple[Reason, ...] = get_args(Reason)
# Only transient conditions are retried: the others would fail the same way again.
RETRYABLE_REASONS: frozenset[Reason] = frozenset({"Unavailable", "Timeout"})

# Cluster ids and uids end up inside URLs and NetBox descriptions; keep them to a safe alphabet so
# the text form of a key can always be parsed back.
_TOKEN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True)
class AllocationKey:
    """Who an external address belongs to: the idempotency key of every allocation."""

    cluster_id: str
    service_uid: str
    family: Family

    def __post_init__(self) -> None:
        for name, value in (("cluster_id", self.cluster_id), ("service_uid", self.service_uid)):
            if not _TOKEN.match(value):
                raise ValueError(f"{name} {value!r} must match {_TOKEN.pattern}")
        if self.family not in FAMILIES:
            raise ValueError(f"family {self.family!r} must be one of {FAMILIES}")

    def __str__(self) -> str:
        return f"{self.cluster_id}/{self.service_uid}/{self.family}"

    @classmethod
    def parse(cls, text: str) -> AllocationKey:
        """Inverse of `str(key)`; raises ValueError on anything else."""
        parts = text.split("/")
        if len(parts) != 3:
            raise ValueError(f"allocation key {text!r} is not cluster/uid/family")
        cluster_id, service_uid, family = parts
        if family not in FAMILIES:
            raise ValueError(f"allocation key {text!r} has an unknown family")
        return cls(cluster_id, service_uid, family)


@dataclass(frozen=True)
class ExternalAddress:
    """One address the backend holds for our cluster. `key`/`service` are None when the backend
    has the address tagged as ours but its owner record cannot be read (e.g. edited by hand)."""

    ip: str
    key: AllocationKey | None
    service: str | None  # "namespace/name"


class BackendError(Exception):
    """A backend call failed. `reason` is what the controller reports (in AllocationFailed Events
    and /status); `retryable` tells the retry policy whether trying again can help."""

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        retryable: bool | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: Reason = reason
        self.message = message
        self.retryable = reason in RETRYABLE_REASONS if retryable is None else retryable
        self.status = status
        self.retry_after = retry_after
        self.body = body  # the decoded error body, for providers that give it a meaning


class IPAMBackend(Protocol):
    """What the controller needs from an external IPAM. All methods raise BackendError."""

    async def allocate(
        self,
        key: AllocationKey,
        *,
        service: str,
        dns_name: str | None = None,
        requested_ip: str | None = None,
    ) -> str:
        """Return the address held by `key`, allocating one if it holds none (idempotent)."""
        ...

    async def release(self, key: AllocationKey, ip: str) -> None:
        """Give `ip` back if `key` holds it; releasing what is already gone is not an error."""
        ...

    async def list(self, cluster_id: str) -> list[ExternalAddress]:
        """Every address this backend holds for `cluster_id`, for reconciliation: one per key.
        A backend without server-side idempotency (NetBox) deletes duplicate objects of one key
        here, keeping the one allocate returns; no key ever loses its only address."""
        ...

    async def health(self) -> None:
        """Raise BackendError unless the backend answers and accepts our credentials."""
        ...

    async def close(self) -> None:
        """Release connections; the backend is not used afterwards."""
        ...


# on_call(backend, op, result, seconds): result is "ok" or a BackendError reason. The controller
# connects this to its Prometheus counters; pools itself never imports prometheus.
CallObserver = Callable[[str, str, str, float], None]

T = TypeVar("T")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass
class RetryPolicy:
    """Bounded exponential backoff with jitter, honouring Retry-After.

    Jitter spreads the retries of many controllers hitting one IPAM, so a recovering server is not
    hammered in lockstep. The total bound keeps a reconcile pass from hanging on a dead backend.
    """

    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0
    total_seconds: float = 30.0
    jitter: float = 0.5  # each delay is scaled by a random factor in [1 - jitter, 1]
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Delay before retry number `attempt` (1-based)."""
        backoff = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        backoff *= 1.0 - self.jitter * self.rng.random()
        if retry_after is not None:
            backoff = max(backoff, retry_after)
        return float(backoff)

    async def run(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run `operation`, retrying retryable BackendErrors within the attempt and time bounds."""
        started = self.clock()
        attempt = 1
        while True:
            try:
                return await operation()
            except BackendError as error:
                if not error.retryable or attempt >= self.attempts:
                    raise
                wait = self.delay(attempt, error.retry_after)
                if self.clock() - started + wait > self.total_seconds:
                    raise
                await self.sleep(wait)
                attempt += 1


async def observed(
    observer: CallObserver | None, backend: str, op: str, call: Awaitable[T]
) -> T:
    """Await `call`, reporting its outcome and duration to `observer` (if any)."""
    started = time.monotonic()
    result = "ok"
    try:
        return await call
    except BackendError as error:
        result = error.reason
        raise
    except asyncio.CancelledError:
        result = "Cancelled"
        raise
    finally:
        if observer is not None:
            observer(backend, op, result, time.monotonic() - started)
