"""Prometheus metrics (prefix `vipam_`), on a registry per process object.

A registry per Controller (rather than the global default) lets tests run several controllers in
one process and read each one's figures. Names follow Prometheus' conventions: base units
(`_seconds`), `_total` on counters (prometheus_client appends it), a plural unit on gauges of
counts (`_addresses`); tests/integration/operator/test_metrics.py checks a live scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ccm.health.probes import ApiContact


class ControllerMetrics:
    def __init__(
        self, registry: CollectorRegistry | None = None, *, api_grace: float = 10.0
    ) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # fed by api_request below: /readyz, /status and two gauges read it (ccm.health.probes)
        self.api_contact = ApiContact(api_grace, r)
        self.allocations = Counter(
            "vipam_allocations", "Allocation decisions by result", ["result"], registry=r
        )
        self.reconcile_seconds = Histogram(
            "vipam_reconcile_duration_seconds", "Time of one Service sync", ["result"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.queue_depth = Gauge("vipam_queue_depth", "Keys waiting in the work queue", registry=r)
        self.leader = Gauge("vipam_leader", "1 while this replica holds the lease", registry=r)
        self.api_requests = Counter(
            "vipam_api_requests", "Kubernetes API requests", ["verb", "resource", "code"],
            registry=r,
        )
        self.api_errors = Counter(
            "vipam_api_errors", "Kubernetes API requests that failed", ["verb", "resource", "code"],
            registry=r,
        )
        self.backend_calls = Counter(
            "vipam_backend_calls", "External IPAM calls", ["pool", "op", "result"], registry=r
        )
        self.backend_seconds = Histogram(
            "vipam_backend_call_duration_seconds", "External IPAM call latency", ["pool", "op"],
            registry=r,
        )

    def watch_pools(self, usage: Callable[[], Mapping[str, Mapping[Any, Any]]]) -> None:
        """Pool figures read from the allocator at scrape time (it keeps them exact and cheap),
        so allocations pay nothing for metrics."""
        self.registry.register(_PoolUsage(usage))

    # -- hooks for the lower layers ---------------------------------------------------------

    def allocation(self, result: str) -> None:
        self.allocations.labels(result=result).inc()

    def api_request(self, verb: str, resource: str, status: int, seconds: float) -> None:
        self.api_contact.observe(verb, resource, status, seconds)
        code = str(status)
        self.api_requests.labels(verb=verb, resource=resource, code=code).inc()
        if status == 0 or status >= 400:
            self.api_errors.labels(verb=verb, resource=resource, code=code).inc()

    def backend_call(self, pool: str, op: str, result: str, seconds: float) -> None:
        self.backend_calls.labels(pool=pool, op=op, result=result).inc()
        self.backend_seconds.labels(pool=pool, op=op).observe(seconds)


class _PoolUsage(Collector):
    def __init__(self, usage: Callable[[], Mapping[str, Mapping[Any, Any]]]) -> None:
        self.usage = usage

    def collect(self) -> Iterator[Metric]:
        families = {
            field: GaugeMetricFamily(
                f"vipam_pool_{field}_addresses", f"{field.capitalize()} addresses per pool and "
                "family (IPv6 counts are floats above 2^53)", labels=["pool", "family"],
            )
            for field in ("capacity", "allocated", "available")
        }
        for pool, per_family in sorted(self.usage().items()):
            for family, stats in sorted(per_family.items()):
                for field, metric in families.items():
                    metric.add_metric([pool, family], float(getattr(stats, field)))
        yield from families.values()
