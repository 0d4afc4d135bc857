"""Health endpoints, metrics, /status, namespace selectors, compat flags and the lease fence."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from ccm.contract import names
from ccm.health.server import HealthServer
from ccm.kube.client import KubeClient
from ccm.kube.resources import NAMESPACES
from devkit.emulator import Emulator
from tests.integration.controller.harness import (
    addresses_of,
    create_pool,
    create_service,
    ensure_namespace,
    failure_of,
    leader_ready,
    start_controller,
)


async def test_health_ready_metrics_and_status(
    emu: Emulator, kube: KubeClient, kubeconfig: Path
) -> None:
    await create_pool(kube, "p", addresses=["192.0.2.0/30"])
    controller = await start_controller(kubeconfig)
    server = HealthServer(controller, "127.0.0.1", 0)
    await server.start()
    try:
        await leader_ready(controller)
        await create_service(kube, "web")
        await addresses_of(emu, "default", "web")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/healthz") as r:
                assert r.status == 200 and "ok" in await r.text()
            async with http.get(f"{server.url}/readyz") as r:
                assert r.status == 200 and "leader" in await r.text()
            async with http.get(f"{server.url}/metrics") as r:
                text = await r.text()
            assert 'vipam_allocations_total{result="allocated"} 1.0' in text
            assert "vipam_leader 1.0" in text
            assert 'vipam_pool_capacity_addresses{family="IPv4",pool="p"} 4.0' in text
            assert 'vipam_pool_allocated_addresses{family="IPv4",pool="p"} 1.0' in text
            assert 'vipam_pool_available_addresses{family="IPv4",pool="p"} 3.0' in text
            assert "vipam_reconcile_duration_seconds_bucket" in text
            assert 'vipam_api_requests_total{code="200"' in text
            async with http.get(f"{server.url}/status") as r:
                status = await r.json()
        assert status["is_leader"] is True and status["restored"] is True
        assert status["pools"]["p"]["usage"]["IPv4"] == {
            "capacity": "4", "allocated": "1", "available": "3",
            "capacityReadable": "4", "allocatedPercent": "25%",
        }
        assert "token" not in str(status).lower()
    finally:
        await server.stop()
        await controller.stop()


async def test_namespace_selector_follows_namespace_labels(
    emu: Emulator, kube: KubeClient, kubeconfig: Path
) -> None:
    await ensure_namespace(kube, "team-a", {"tier": "gold"})
    await ensure_namespace(kube, "team-b", {"tier": "bronze"})
    await create_pool(
        kube, "gold", addresses=["203.0.113.0/30"],
        serviceAllocation={"namespaceSelector": {"matchLabels": {"tier": "gold"}}},
    )
    controller = await start_controller(kubeconfig)
    try:
        await leader_ready(controller)
        await create_service(kube, "a", "team-a")
        await create_service(kube, "b", "team-b")
        assert await addresses_of(emu, "team-a", "a") == ("203.0.113.0",)
        assert (await failure_of(emu, "team-b", "b"))["reason"] == "NoMatchingPool"
        # relabel team-b: its waiting Service is served without being touched
        ns = await kube.get(NAMESPACES, None, "team-b")
        ns["metadata"]["labels"] = {"tier": "gold"}
        await kube.replace(NAMESPACES, None, "team-b", ns)
        assert await addresses_of(emu, "team-b", "b") == ("203.0.113.1",)
    finally:
        await controller.stop()


async def test_compat_annotations_need_the_flag(
    emu: Emulator, kube: KubeClient, kubeconfig: Path
) -> None:
    await create_pool(kube, "p", addresses=["192.0.2.0/29"])
    controller = await start_controller(kubeconfig, compat="metallb,cilium")
    try:
        await leader_ready(controller)
        await create_service(kube, "m", annotations={"metallb.io/loadBalancerIPs": "192.0.2.6"})
        await create_service(kube, "c", annotations={"lbipam.cilium.io/ips": "192.0.2.5"})
        await create_service(kube, "k", annotations={"kube-vip.io/loadbalancerIPs": "192.0.2.4"})
        assert await addresses_of(emu, "default", "m") == ("192.0.2.6",)
        assert await addresses_of(emu, "default", "c") == ("192.0.2.5",)
        assert await addresses_of(emu, "default", "k") == ("192.0.2.0",)  # kube-vip not enabled
    finally:
        await controller.stop()


async def test_leader_that_cannot_renew_fences_itself_before_a_standby_takes_over(
    emu: Emulator, kube: KubeClient, kubeconfig: Path
) -> None:
    """Renewals stop (a stuck or partitioned elector) while the rest of the process runs on."""
    await create_pool(kube, "p", addresses=["192.0.2.0/28"])
    a = await start_controller(kubeconfig, identity="a")
    await leader_ready(a)
    b = await start_controller(kubeconfig, identity="b")
    fenced_at: float | None = None
    took_over_at: float | None = None
    try:
        (elector,) = [t for t in a._tasks if t.get_name() == "elector"]
        elector.cancel()
        cut = time.monotonic()
        while time.monotonic() - cut < 8 and took_over_at is None:
            now = time.monotonic()
            if fenced_at is None and not a.elector.is_leader():
                fenced_at = now
            if took_over_at is None and b.elector.is_leader():
                took_over_at = now
            await asyncio.sleep(0.005)
        assert fenced_at is not None and took_over_at is not None
        assert fenced_at - cut <= a.settings.renew_deadline + 0.05
        assert took_over_at - fenced_at >= (
            a.settings.lease_duration - a.settings.renew_deadline - 0.1
        )
        writes_by_a = a.metrics.api_requests.labels(
            verb="patch", resource="services", code="200")._value.get()
        await create_service(kube, "after")
        await addresses_of(emu, "default", "after")
        svc = emu.get_object("v1/services", "default", "after") or {}
        assert names.FINALIZER in svc["metadata"]["finalizers"]
        assert a.metrics.api_requests.labels(
            verb="patch", resource="services", code="200")._value.get() == writes_by_a
    finally:
        await a.stop()
        await b.stop()
