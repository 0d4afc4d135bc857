"""Release on delete, on type change and on class change; address reuse; request changes."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ccm.contract import names
from ccm.controller.manager import Controller
from ccm.kube.client import KubeClient
from ccm.kube.resources import SERVICES
from devkit.emulator import Emulator
from tests.integration.controller.harness import (
    addresses_of,
    create_pool,
    create_service,
    events_for,
    get_service,
    leading_controller,
    wait_for,
)


@pytest.fixture
async def controller(kubeconfig: Path, kube: KubeClient) -> AsyncIterator[Controller]:
    await create_pool(kube, "pool", addresses=["192.0.2.0/30"])
    async with leading_controller(kubeconfig) as c:
        yield c


async def test_delete_removes_finalizer_and_frees_the_address(
    emu: Emulator, kube: KubeClient, controller: Controller
) -> None:
    await create_service(kube, "a")
    assert await addresses_of(emu, "default", "a") == ("192.0.2.0",)
    await kube.delete(SERVICES, "default", "a")
    await wait_for(lambda: get_service(emu, "default", "a") is None, 5, "service gone")
    await wait_for(lambda: events_for(emu, "a", names.REASON_RELEASED), 5)
    await create_service(kube, "b")
    assert await addresses_of(emu, "default", "b") == ("192.0.2.0",)


async def test_type_change_clears_what_we_wrote_but_keeps_user_fields(
    emu: Emulator, kube: KubeClient, controller: Controller
) -> None:
    await create_service(kube, "t")
    await addresses_of(emu, "default", "t")
    svc = await kube.get(SERVICES, "default", "t")
    changed = copy.deepcopy(svc)
    changed["spec"]["type"] = "ClusterIP"
    changed["metadata"]["annotations"]["user/keep"] = "yes"
    await kube.replace(SERVICES, "default", "t", changed)

    def cleared() -> bool:
        obj = get_service(emu, "default", "t") or {}
        meta = obj.get("metadata", {})
        return (
            not (obj.get("status", {}).get("loadBalancer") or {}).get("ingress")
            and names.FINALIZER not in (meta.get("finalizers") or [])
            and names.ANN_ALLOCATED_FROM not in (meta.get("annotations") or {})
            and "loadBalancerIP" not in obj.get("spec", {})
        )

    await wait_for(cleared, 5, "type-change release")
    obj = get_service(emu, "default", "t")
    assert obj is not None and obj["metadata"]["annotations"]["user/keep"] == "yes"


async def test_class_change_via_cluster_ip_releases(
    emu: Emulator, kube: KubeClient, controller: Controller
) -> None:
    await create_service(kube, "c")
    await addresses_of(emu, "default", "c")
    svc = await kube.get(SERVICES, "default", "c")
    svc["spec"]["type"] = "ClusterIP"
    svc = await kube.replace(SERVICES, "default", "c", svc)
    await wait_for(
        lambda: not (get_service(emu, "default", "c") or {}).get("metadata", {}).get("finalizers"),
        5, "release after type change",
    )
    svc = await kube.get(SERVICES, "default", "c")
    svc["spec"]["type"] = "LoadBalancer"
    svc["spec"]["loadBalancerClass"] = "example.com/other"
    await kube.replace(SERVICES, "default", "c", svc)
    await create_service(kube, "d")
    assert await addresses_of(emu, "default", "d") == ("192.0.2.0",)
    obj = get_service(emu, "default", "c")
    assert obj is not None and not (obj.get("status", {}).get("loadBalancer") or {}).get("ingress")


async def test_changing_the_requested_ip_moves_and_frees_the_old_one(
    emu: Emulator, kube: KubeClient, controller: Controller
) -> None:
    await create_service(kube, "m", annotations={names.ANN_IPS: "192.0.2.1"})
    assert await addresses_of(emu, "default", "m") == ("192.0.2.1",)
    svc = await kube.get(SERVICES, "default", "m")
    svc["metadata"]["annotations"][names.ANN_IPS] = "192.0.2.2"
    await kube.replace(SERVICES, "default", "m", svc)
    await wait_for(
        lambda: (get_service(emu, "default", "m") or {}).get("status", {})
        .get("loadBalancer", {}).get("ingress") == [{"ip": "192.0.2.2", "ipMode": "VIP"}],
        5, "moved address",
    )
    await create_service(kube, "n", annotations={names.ANN_IPS: "192.0.2.1"})
    assert await addresses_of(emu, "default", "n") == ("192.0.2.1",)


async def test_pool_deleted_keeps_address_and_warns(
    emu: Emulator, kube: KubeClient, controller: Controller
) -> None:
    from ccm.kube.resources import IPPOOLS

    await create_service(kube, "stay")
    ip = await addresses_of(emu, "default", "stay")
    await kube.delete(IPPOOLS, None, "pool")
    await wait_for(lambda: events_for(emu, "stay", names.REASON_CONFLICT), 5, "orphan event")
    assert (await addresses_of(emu, "default", "stay")) == ip
