"""Every failure reason reaches the user as a condition and an Event, and blocks nobody else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ccm.contract import names
from ccm.controller.manager import Controller
from ccm.kube.client import KubeClient
from devkit.emulator import Emulator
from tests.integration.controller.harness import (
    addresses_of,
    create_pool,
    create_service,
    events_for,
    failure_of,
    get_service,
    leading_controller,
    wait_for,
)


@pytest.fixture
async def controller(kubeconfig: Path, kube: KubeClient) -> AsyncIterator[Controller]:
    await create_pool(kube, "tiny", addresses=["192.0.2.1/32"])
    await create_pool(kube, "off", addresses=["192.0.2.8/30"], disabled=True)
    await create_pool(
        kube, "shop-only", addresses=["203.0.113.0/30"], autoAssign=False,
        serviceAllocation={"namespaces": ["shop"]},
    )
    async with leading_controller(kubeconfig) as c:
        yield c


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("bad-ip", {"annotations": {names.ANN_IPS: "192.0.2.999"}}, "InvalidRequest"),
    ("outside", {"annotations": {names.ANN_IPS: "198.51.100.77"}}, "RequestedIPOutsidePools"),
    ("nopool", {"annotations": {names.ANN_POOL: "missing"}}, "UnknownPool"),
    ("disabled", {"annotations": {names.ANN_POOL: "off"}}, "PoolDisabled"),
    ("family", {"annotations": {names.ANN_IPS: "2001:db8::1"}, "families": ["IPv4"]},
     "FamilyMismatch"),
    ("v6only", {"families": ["IPv6"]}, "NoMatchingPool"),
    ("dual", {"families": ["IPv4", "IPv6"], "policy": "RequireDualStack"},
     "DualStackUnavailable"),
    ("wrong-ns", {"annotations": {names.ANN_POOL: "shop-only"}}, "NoMatchingPool"),
]


@pytest.mark.parametrize(("name", "kwargs", "reason"), CASES, ids=[c[0] for c in CASES])
async def test_failure_reason_is_reported(
    emu: Emulator, kube: KubeClient, controller: Controller,
    name: str, kwargs: dict[str, Any], reason: str,
) -> None:
    await create_service(kube, name, **kwargs)
    cond = await failure_of(emu, "default", name)
    assert cond["reason"] == reason, cond
    assert cond["message"]
    events = await wait_for(lambda: events_for(emu, name, names.REASON_FAILED), 5)
    # the Event stands alone in `kubectl describe svc`: it names its reason, then the message
    assert events[0]["type"] == "Warning"
    assert events[0]["message"] == f"{reason}: {cond['message']}"
    svc = get_service(emu, "default", name)
    assert svc is not None and not svc["status"].get("loadBalancer", {}).get("ingress")


async def test_exhausted_pool_then_release_serves_the_waiting_service(
    emu: Emulator, kube: KubeClient, controller: Controller
) -> None:
    await create_service(kube, "first")
    assert await addresses_of(emu, "default", "first") == ("192.0.2.1",)
    await create_service(kube, "second")
    cond = await failure_of(emu, "default", "second")
    assert cond["reason"] == "PoolExhausted"
    from ccm.kube.resources import SERVICES

    await kube.delete(SERVICES, "default", "first")
    assert await addresses_of(emu, "default", "second") == ("192.0.2.1",)


async def test_requested_ip_in_use_is_refused(
    emu: Emulator, kube: KubeClient, controller: Controller
) -> None:
    await create_service(kube, "holder")
    await addresses_of(emu, "default", "holder")
    await create_service(kube, "thief", annotations={names.ANN_IPS: "192.0.2.1"})
    cond = await failure_of(emu, "default", "thief")
    assert cond["reason"] in {"RequestedIPInUse", "SharingConflict"}
    assert "holder" in cond["message"]


async def test_bad_service_does_not_block_good_ones(
    emu: Emulator, kube: KubeClient, controller: Controller
) -> None:
    await create_service(kube, "broken", annotations={names.ANN_IPS: "nonsense"})
    await create_service(kube, "fine")
    assert await addresses_of(emu, "default", "fine") == ("192.0.2.1",)
    await failure_of(emu, "default", "broken")
