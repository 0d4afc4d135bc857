"""Pools backed by an external IPAM: the controller against the reference http IPAM server.

Real HTTP on both sides: the controller talks to the API emulator and to the reference
implementation of docs/ipam-http.yaml, whose fault injection stands in for a flaky IPAM.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ccm.contract import names
from ccm.kube.client import KubeClient
from ccm.kube.resources import SECRETS, SERVICES
from devkit.emulator import Emulator
from devkit.reference_ipam import ReferenceServer
from pools.external import AllocationKey
from tests.integration.controller.harness import (
    addresses_of,
    create_pool,
    create_service,
    events_for,
    failure_of,
    get_service,
    leader_ready,
    leading_controller,
    start_controller,
    wait_for,
)

TOKEN = "s3cret-token"
CLUSTER = "lab-cluster"


@pytest.fixture
async def ipam(kube: KubeClient) -> AsyncIterator[ReferenceServer]:
    server = ReferenceServer({"lab": ["198.51.100.0/29", "2001:db8:5::/125"]}, token=TOKEN)
    await server.start()
    await kube.create(SECRETS, "kube-system", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ipam-token"},
        "data": {"token": base64.b64encode(TOKEN.encode()).decode()},
    })
    await create_pool(kube, "ext", external={
        "provider": "http", "url": server.url, "secretRef": {"name": "ipam-token"},
        "timeoutSeconds": 1, "options": {"pool": "lab"},
    })
    yield server
    await server.stop()


def held(server: ReferenceServer) -> dict[str, str]:
    """uid/family -> ip, as the IPAM records it."""
    return {f"{r.key.service_uid}/{r.key.family}": r.ip for r in server.ipam.list(CLUSTER)}


async def test_allocate_records_owner_and_release_returns_it(
    emu: Emulator, kube: KubeClient, kubeconfig: Path, ipam: ReferenceServer
) -> None:
    async with leading_controller(kubeconfig, cluster_id=CLUSTER):
        svc = await create_service(kube, "web")
        uid = svc["metadata"]["uid"]
        (ip,) = await addresses_of(emu, "default", "web")
        obj = get_service(emu, "default", "web") or {}
        assert obj["metadata"]["annotations"][names.ANN_EXTERNAL_KEY] == f"{CLUSTER}/{uid}"
        assert obj["metadata"]["annotations"][names.ANN_ALLOCATED_FROM] == "ext"
        assert held(ipam) == {f"{uid}/IPv4": ip}  # the IPAM chose it and recorded the owner
        (record,) = ipam.ipam.list(CLUSTER)
        assert record.service == "default/web"
        await kube.delete(SERVICES, "default", "web")
        await wait_for(lambda: get_service(emu, "default", "web") is None, 5)
        await wait_for(lambda: not held(ipam), 5, "backend release")


async def test_dual_stack_from_the_backend(
    emu: Emulator, kube: KubeClient, kubeconfig: Path, ipam: ReferenceServer
) -> None:
    async with leading_controller(kubeconfig, cluster_id=CLUSTER):
        svc = await create_service(
            kube, "dual", families=["IPv4", "IPv6"], policy="RequireDualStack"
        )
        v4, v6 = await addresses_of(emu, "default", "dual")
        uid = svc["metadata"]["uid"]
        assert held(ipam) == {f"{uid}/IPv4": v4, f"{uid}/IPv6": v6}
        assert ":" not in v4 and ":" in v6


async def test_crash_after_commit_gets_the_same_address_not_a_second(
    emu: Emulator, kube: KubeClient, kubeconfig: Path, ipam: ReferenceServer
) -> None:
    ipam.faults.crash_after_commit = 1  # the IPAM commits, then the reply is lost
    async with leading_controller(kubeconfig, cluster_id=CLUSTER):
        svc = await create_service(kube, "lost-reply")
        ips = await addresses_of(emu, "default", "lost-reply")
        assert held(ipam) == {f"{svc['metadata']['uid']}/IPv4": ips[0]}
        assert len(ipam.ipam.list(CLUSTER)) == 1


async def test_backend_down_is_reported_and_served_services_keep_working(
    emu: Emulator, kube: KubeClient, kubeconfig: Path, ipam: ReferenceServer
) -> None:
    async with leading_controller(kubeconfig, cluster_id=CLUSTER) as c:
        await create_service(kube, "early")
        early = await addresses_of(emu, "default", "early")
        ipam.faults.fail(503, times=10_000)
        await create_service(kube, "late")
        cond = await failure_of(emu, "default", "late", timeout=15)
        assert cond["reason"] == "ExternalPool"
        assert "external IPAM of pool ext failed: Unavailable" in cond["message"]
        events = await wait_for(lambda: events_for(emu, "late", names.REASON_FAILED), 5)
        assert "Unavailable" in events[0]["message"]
        assert c.status()["external_ipam"]["ext"]["healthy"] is False
        assert "external IPAM down: ext" in c.ready()[1]
        assert (await addresses_of(emu, "default", "early")) == early
        ipam.faults.fail_next.clear()
        (late,) = await addresses_of(emu, "default", "late", timeout=15)
        assert late != early[0]


async def test_reconcile_releases_addresses_whose_service_is_gone(
    emu: Emulator, kube: KubeClient, kubeconfig: Path, ipam: ReferenceServer
) -> None:
    # an allocation made for a Service that no longer exists (crash, then deletion)
    ghost = AllocationKey(CLUSTER, "0000-ghost", "IPv4")
    ipam.ipam.allocate(ghost, "default/ghost", None, None, "lab")
    async with leading_controller(
        kubeconfig, cluster_id=CLUSTER, external_grace_seconds=0.5,
        external_reconcile_seconds=0.2,
    ):
        await create_service(kube, "alive")
        await addresses_of(emu, "default", "alive")
        await wait_for(
            lambda: all(r.key != ghost for r in ipam.ipam.list(CLUSTER)), 10, "ghost released"
        )
        assert len(ipam.ipam.list(CLUSTER)) == 1  # the live Service's address stays


async def test_restart_keeps_external_addresses_without_writes(
    emu: Emulator, kube: KubeClient, kubeconfig: Path, ipam: ReferenceServer
) -> None:
    first = await start_controller(kubeconfig, cluster_id=CLUSTER)
    await leader_ready(first)
    for name in ("a", "b", "c"):
        await create_service(kube, name)
    before = [await addresses_of(emu, "default", n) for n in ("a", "b", "c")]
    await first.stop()
    emu.reset_stats()
    calls_before = len(ipam.requests)
    async with leading_controller(kubeconfig, cluster_id=CLUSTER) as second:
        await wait_for(lambda: second.queue.depth == 0 and not second.queue._processing, 5)
        await asyncio.sleep(1.0)  # a late write would land now, and be counted
        after = [await addresses_of(emu, "default", n) for n in ("a", "b", "c")]
        assert after == before
        # counted at the server: no Service write (spec or status) and no Event
        for verb, resource in (("update", "services"), ("patch", "services"),
                               ("create", "events"), ("patch", "events")):
            assert emu.stats.count(verb, resource) == 0, (verb, resource, emu.stats)
        allocations = [r for r in ipam.requests[calls_before:] if r.startswith("PUT")]
        assert allocations == []


async def test_controller_killed_mid_allocation_converges_on_one_address(
    emu: Emulator, kube: KubeClient, kubeconfig: Path, ipam: ReferenceServer
) -> None:
    """The first controller dies while the IPAM is committing; its successor finds that
    allocation (same key) instead of making a second one."""
    commit = ipam.ipam.allocate

    def commit_then_go_dark(*args: object, **kwargs: object) -> object:
        result = commit(*args, **kwargs)  # type: ignore[arg-type]
        ipam.faults.fail(503, times=10_000)  # the IPAM is unreachable from now on
        return result

    ipam.ipam.allocate = commit_then_go_dark  # type: ignore[method-assign]
    ipam.faults.crash_after_commit = 1  # ... and the reply to the commit is lost
    first = await start_controller(kubeconfig, cluster_id=CLUSTER)
    await leader_ready(first)
    svc = await create_service(kube, "torn")
    uid = svc["metadata"]["uid"]
    await wait_for(lambda: any(f"/{uid}/" in r for r in ipam.requests), 5, "backend call sent")
    await wait_for(lambda: held(ipam), 5, "the IPAM committed the first allocation")
    await first.stop(release=True)  # dies without an answer; the Service has no address
    assert not (get_service(emu, "default", "torn") or {}).get("status", {}).get(
        "loadBalancer", {}).get("ingress")
    committed = held(ipam)
    ipam.ipam.allocate = commit  # type: ignore[method-assign]
    ipam.faults.fail_next.clear()
    async with leading_controller(kubeconfig, cluster_id=CLUSTER):
        (ip,) = await addresses_of(emu, "default", "torn")
        assert committed == {f"{uid}/IPv4": ip}
        assert held(ipam) == committed
