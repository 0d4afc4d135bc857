"""The API misbehaving: dropped watches, expired history (410), 409 races, 429 and 500.

These run on the API emulator: it injects each fault on cue, which a real server cannot. (The
real server's own 410s, after an API-server restart with etcd compaction, are exercised by the
outage tests.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ccm.controller.manager import Controller
from ccm.kube.client import ApiError, KubeClient
from ccm.kube.resources import SERVICES
from devkit.emulator import Emulator
from tests.integration.controller.harness import (
    addresses_of,
    create_pool,
    create_service,
    ingress_ips,
    leading_controller,
    wait_for,
)
from tests.integration.controller.invariants import DuplicateWatcher


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    return emulator


@pytest.fixture
def kubeconfig(emulator_kubeconfig: Path) -> Path:
    return emulator_kubeconfig


@pytest.fixture
def kube(emulator_kube: KubeClient) -> KubeClient:
    return emulator_kube


@pytest.fixture
async def controller(kubeconfig: Path, kube: KubeClient) -> AsyncIterator[Controller]:
    await create_pool(kube, "p", addresses=["198.51.100.0/25"])
    async with leading_controller(kubeconfig) as c:
        yield c


async def test_watch_drops_and_410_mid_churn_miss_nothing(
    emu: Emulator, kube: KubeClient, controller: Controller
) -> None:
    with DuplicateWatcher(emu) as watcher:
        for i in range(60):
            await create_service(kube, f"w{i}")
            if i % 10 == 3:
                emu.faults.drop_watches()
            if i % 20 == 7:
                emu.faults.expire_history()
                emu.faults.drop_watches()
            if i % 15 == 5 and i > 15:
                await kube.delete(SERVICES, "default", f"w{i - 10}")
        await wait_for(
            lambda: all(ingress_ips(s) for s in emu.list_objects("services")), 20, "all served"
        )
    assert watcher.violations == []
    assert controller.services.relists >= 2  # the 410s forced relists


async def test_500_and_429_are_retried_until_served(
    emu: Emulator, kube: KubeClient, controller: Controller
) -> None:
    emu.faults.fail_next(3, 500, methods={"PATCH"}, path_contains="/services/")
    await create_service(kube, "five-hundred")
    assert await addresses_of(emu, "default", "five-hundred") == ("198.51.100.0",)
    emu.faults.fail_next(2, 429, retry_after=0.2, methods={"PATCH"}, path_contains="/services/")
    await create_service(kube, "throttled")
    assert await addresses_of(emu, "default", "throttled") == ("198.51.100.1",)
    assert controller.last_errors, "the failures were seen and retried"


async def test_concurrent_user_edits_cause_409s_that_converge(
    emu: Emulator, kube: KubeClient, controller: Controller
) -> None:
    await create_service(kube, "busy")

    async def keep_editing() -> None:
        for i in range(200):
            with contextlib.suppress(ApiError):
                svc = await kube.get(SERVICES, "default", "busy")
                svc["metadata"].setdefault("labels", {})["edit"] = str(i)
                await kube.replace(SERVICES, "default", "busy", svc)
            await asyncio.sleep(0)

    editor = asyncio.create_task(keep_editing())
    ips = await addresses_of(emu, "default", "busy", timeout=20)
    await editor
    svc = emu.get_object("v1/services", "default", "busy") or {}
    assert svc["metadata"]["labels"]["edit"] == "199"  # the user's edits were not clobbered
    assert ingress_ips(svc) == ips
