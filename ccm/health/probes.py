"""What /healthz and /readyz mean, above all while the Kubernetes API server is away.

A liveness probe that fails makes the kubelet restart the container. Restarting a controller or
a speaker because the API server is down does not bring the API server back: it throws away
warm caches, and when every replica restarts at once they all relist together when it returns.
So the two endpoints answer different questions:

* ``/healthz`` (liveness): *would a restart of this process help?* It fails only for faults
  inside the process: the event loop has stalled, or a watch has made no progress for longer
  than its timeout plus a minute *while the API server answers other requests* (a stuck
  stream). During an outage it stays 200, and its text says that the API server is unreachable.
* ``/readyz`` (readiness): *can this replica do its work now?* It fails (503) once the API server
  has not answered for longer than the process's grace period: the controller's
  ``--renew-deadline`` (by then a leader has fenced itself), the speaker's ``--lease-duration``
  (by then it has stopped announcing). It is 200 again at the first answer. Readiness never
  restarts anything; it shows in ``kubectl get pods`` and holds a rolling update back.

The outage itself is for the operator to see: in ``/status`` (``api``: reachable, last contact,
seconds since, the last failure) and in metrics (``vipam_api_last_contact_timestamp_seconds``,
``vipam_api_contact_age_seconds``, and the controller's ``vipam_leader``).

"Contact" is any HTTP answer below 500, 404 and 409 included: the server answered. A transport
error (refused, reset, timed out) or a 5xx (no etcd, shutting down) is not contact.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ccm.health.numbers import rfc3339

STALLED_AFTER = 10.0  # seconds without a heartbeat of the event loop

RequestObserver = Callable[[str, str, int, float], None]


class ObservedClient(Protocol):
    observer: RequestObserver | None


class ApiContact(Collector):
    """When this process last heard from the API server; fed by the client's request observer."""

    def __init__(
        self,
        grace: float,
        registry: CollectorRegistry | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.grace = grace
        self._clock = clock
        self._wall = wall
        self._started = clock()
        self._last: float | None = None  # monotonic time of the last answer
        self._last_wall: float | None = None
        self._up_since: float | None = None  # monotonic: answers without a gap > grace since
        self._down_wall: float | None = None  # wall time of the first failure after contact
        self.last_failure: str | None = None
        self.failures_since_contact = 0
        if registry is not None:
            registry.register(self)

    def observe(self, verb: str, resource: str, status: int, seconds: float = 0.0) -> None:
        """A request ended: (verb, resource, HTTP status or 0 for a transport error, seconds)."""
        now = self._clock()
        if 0 < status < 500:
            if self._last is None or now - self._last > self.grace:
                self._up_since = now
            self._last = now
            self._last_wall = self._wall()
            self._down_wall = None
            self.failures_since_contact = 0
            return
        cause = "no answer" if status == 0 else f"HTTP {status}"
        self.last_failure = f"{cause} to {verb} {resource} at {rfc3339(self._wall())}"
        self.failures_since_contact += 1
        if self._down_wall is None:
            self._down_wall = self._wall()

    def attach(self, client: ObservedClient) -> None:
        """Observe every request of client, after whatever observer it already has."""
        previous = client.observer
        if previous is None:
            client.observer = self.observe
            return

        def both(verb: str, resource: str, status: int, seconds: float) -> None:
            previous(verb, resource, status, seconds)
            self.observe(verb, resource, status, seconds)

        client.observer = both

    # -- reading ------------------------------------------------------------------------------

    def age(self) -> float:
        """Seconds since the last answer (since this object was made, before the first)."""
        return self._clock() - (self._last if self._last is not None else self._started)

    def reachable(self) -> bool:
        return self._last is not None and self.age() <= self.grace

    def up_for(self) -> float:
        """Seconds the API server has been answering without a gap longer than grace (0: not)."""
        if not self.reachable() or self._up_since is None:
            return 0.0
        return self._clock() - self._up_since

    def describe_outage(self) -> str:
        if self._last_wall is None:
            return f"API server not reached yet ({self.age():.0f}s since start)"
        return (f"API server unreachable for {self.age():.0f}s "
                f"(last answer {rfc3339(self._last_wall)})")

    def status(self) -> dict[str, Any]:
        """The `api` block of /status."""
        return {
            "reachable": self.reachable(),
            "last_contact": rfc3339(self._last_wall) if self._last_wall is not None else None,
            "seconds_since_contact": round(self.age(), 1),
            "grace_seconds": self.grace,
            "failing_since": rfc3339(self._down_wall) if self._down_wall is not None else None,
            "failures_since_contact": self.failures_since_contact,
            "last_failure": self.last_failure,
        }

    def collect(self) -> Iterator[Metric]:
        stamp = GaugeMetricFamily(
            "vipam_api_last_contact_timestamp_seconds",
            "Unix time of the last answer from the Kubernetes API server (below HTTP 500); "
            "0 before the first",
        )
        stamp.add_metric([], self._last_wall or 0.0)
        yield stamp
        age = GaugeMetricFamily(
            "vipam_api_contact_age_seconds",
            "Seconds since the last answer from the Kubernetes API server (since start before "
            "the first)",
        )
        age.add_metric([], self.age())
        yield age


def liveness(
    *,
    heartbeat: float,
    contact: ApiContact,
    watches: Mapping[str, float] | None = None,
    watch_limit: float = 360.0,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[bool, str]:
    """/healthz: false only when a restart of this process would help (module docstring).

    ``heartbeat`` and the ``watches`` values (resource -> last progress) are monotonic times.
    """
    now = clock()
    if now - heartbeat > STALLED_AFTER:
        return False, f"event loop stalled for {now - heartbeat:.0f}s"
    if not contact.reachable():
        return True, (f"event loop alive; {contact.describe_outage()}: a restart would not help, "
                      "see /readyz and /status")
    # a watch only counts as stuck once the server has answered for the whole limit
    up_for = contact.up_for()
    stale = sorted(
        name for name, progress in (watches or {}).items()
        if min(now - progress, up_for) > watch_limit
    )
    if stale:
        return False, (f"watches not progressing for over {watch_limit:.0f}s although the API "
                       f"server answers: {', '.join(stale)}")
    return True, "event loop alive, watches progressing"


def readiness(ready: tuple[bool, str], contact: ApiContact) -> tuple[bool, str]:
    """/readyz: the process's own verdict, and false while the API server is unreachable."""
    if not contact.reachable():
        return False, contact.describe_outage()
    return ready
