"""The controller against the emulator: every request kind and family, and what it writes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ccm.contract import names
from ccm.controller.manager import Controller
from ccm.kube.client import KubeClient
from ccm.kube.resources import IPPOOLS
from devkit.emulator import Emulator
from tests.integration.controller.harness import (
    addresses_of,
    condition,
    create_pool,
    create_service,
    events_for,
    get_service,
    leading_controller,
    wait_for,
)


@pytest.fixture
async def controller(kubeconfig: Path, kube: KubeClient) -> AsyncIterator[Controller]:
    await create_pool(kube, "v4", addresses=["192.0.2.0/29"])
    await create_pool(kube, "v6", addresses=["2001:db8::/126"])
    await create_pool(kube, "manual", addresses=["198.51.100.10-198.51.100.12"], autoAssign=False)
    async with leading_controller(kubeconfig) as c:
        yield c


async def test_automatic_ipv4_is_written_everywhere_it_belongs(
    emu: Emulator, kube: KubeClient, controller: Controller
) -> None:
    await create_service(kube, "web")
    assert await addresses_of(emu, "default", "web") == ("192.0.2.0",)
    svc = get_service(emu, "default", "web")
    assert svc is not None
    assert names.FINALIZER in svc["metadata"]["finalizers"]
    assert svc["metadata"]["annotations"][names.ANN_ALLOCATED_FROM] == "v4"
    assert svc["spec"]["loadBalancerIP"] == "192.0.2.0"
    assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": "192.0.2.0", "ipMode": "VIP"}]
    cond = condition(svc)
    assert cond["status"] == "True" and "192.0.2.0 from pool v4" in cond["message"]
    assert await wait_for(lambda: events_for(emu, "web", names.REASON_ALLOCATED), 5)


async def test_ipv6_single_stack(emu: Emulator, kube: KubeClient, controller: Controller) -> None:
    await create_service(kube, "six", families=["IPv6"])
    assert await addresses_of(emu, "default", "six") == ("2001:db8::",)


async def test_dual_stack_require_gets_one_address_per_family_in_order(
    emu: Emulator, kube: KubeClient, controller: Controller
) -> None:
    await create_service(kube, "dual", families=["IPv6", "IPv4"], policy="RequireDualStack")
    ips = await addresses_of(emu, "default", "dual")
    assert ips == ("2001:db8::", "192.0.2.0")
    svc = get_service(emu, "default", "dual")
    assert svc is not None and "loadBalancerIP" not in svc["spec"]  # only for single-stack


async def test_requested_ip_annotation_and_spec_field(
    emu: Emulator, kube: KubeClient, controller: Controller
) -> None:
    await create_service(kube, "ann", annotations={names.ANN_IPS: "198.51.100.11"})
    await create_service(kube, "field", loadBalancerIP="192.0.2.5")
    assert await addresses_of(emu, "default", "ann") == ("198.51.100.11",)
    assert await addresses_of(emu, "default", "field") == ("192.0.2.5",)
    svc = get_service(emu, "default", "field")
    assert svc is not None and names.ANN_SET_LB_IP not in svc["metadata"]["annotations"]


async def test_requested_pool_even_when_not_auto_assign(
    emu: Emulator, kube: KubeClient, controller: Controller
) -> None:
    await create_service(kube, "p", annotations={names.ANN_POOL: "manual"})
    assert await addresses_of(emu, "default", "p") == ("198.51.100.10",)


async def test_pool_status_counts_allocations(
    emu: Emulator, kube: KubeClient, controller: Controller
) -> None:
    await create_service(kube, "a")
    await create_service(kube, "b")
    await addresses_of(emu, "default", "b")

    def counted() -> dict[str, str] | None:
        pool = emu.get_object("vipam.io/v1alpha1/ippools", None, "v4") or {}
        v4 = (pool.get("status") or {}).get("ipv4")
        return v4 if v4 and v4.get("allocated") == "2" else None

    v4 = await wait_for(counted, 5, "pool status with 2 allocated")
    assert v4 == {"capacity": "8", "allocated": "2", "available": "6",
                  "capacityReadable": "8", "allocatedPercent": "25%"}
    pool = await kube.get(IPPOOLS, None, "v4")
    ready = [c for c in pool["status"]["conditions"] if c["type"] == "Ready"]
    assert ready and ready[0]["status"] == "True"


async def test_other_class_is_never_touched(
    emu: Emulator, kube: KubeClient, controller: Controller
) -> None:
    await create_service(kube, "theirs", lb_class="example.com/other")
    await create_service(kube, "mine", lb_class=names.LOAD_BALANCER_CLASS)
    await addresses_of(emu, "default", "mine")
    svc = get_service(emu, "default", "theirs")
    assert svc is not None and not svc.get("status", {}).get("loadBalancer", {}).get("ingress")
    assert names.FINALIZER not in (svc["metadata"].get("finalizers") or [])
    assert not events_for(emu, "theirs")


async def test_sharing_key_shares_when_ports_differ(
    emu: Emulator, kube: KubeClient, controller: Controller
) -> None:
    key = {names.ANN_SHARING_KEY: "k1"}
    await create_service(kube, "dns-tcp", annotations=key, ports=[("TCP", 53)])
    await create_service(kube, "dns-udp", annotations=key, ports=[("UDP", 53)])
    await create_service(kube, "other", annotations=key, ports=[("TCP", 53)])
    first = await addresses_of(emu, "default", "dns-tcp")
    second = await addresses_of(emu, "default", "dns-udp")
    third = await addresses_of(emu, "default", "other")
    assert first == second
    assert third != first
