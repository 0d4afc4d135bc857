"""Writes per Service, counted as requests on the in-memory client (never by resourceVersion:
a real server drops a no-op update silently, so an unchanged resourceVersion proves nothing)."""

from __future__ import annotations

from collections import Counter

import pytest

from ccm.kube.resources import SERVICES
from tests.fakekube import FakeKube
from tests.unit.controller.fakecluster import leading, namespace, pool, service, settled, shown


async def _cluster() -> FakeKube:
    kube = FakeKube()
    await namespace(kube, "default")
    await pool(kube, "lan", "192.0.2.0/28")
    return kube


async def test_an_allocation_costs_three_writes_and_a_resync_none() -> None:
    kube = await _cluster()
    async with leading(kube) as controller:
        kube.reset_counts()
        await service(kube, "web")
        await settled(controller)
        assert shown(kube, "default/web") == ("192.0.2.0",)
        service_writes = kube.writes("services") + kube.writes("events")
        # the create itself is the test's; the controller's are the rest
        assert service_writes == Counter({
            ("create", "services"): 1,
            ("patch", "services"): 1,
            ("patch", "services/status"): 1,
            ("create", "events"): 1,
        })
        kube.reset_counts()
        for _ in range(3):
            await controller.sync.sync("default/web")
        assert kube.writes() == Counter()


async def test_a_restart_of_a_converged_cluster_writes_nothing() -> None:
    kube = await _cluster()
    async with leading(kube) as controller:
        for index in range(5):
            await service(kube, f"s{index}")
        await settled(controller)
    assert all(shown(kube, f"default/s{index}") for index in range(5))
    kube.reset_counts()
    async with leading(kube) as controller:
        await settled(controller)
    writes = kube.writes("services") + kube.writes("events")
    assert writes == Counter()


@pytest.mark.parametrize("reply_delay", [0.0, 0.05])
async def test_our_own_writes_coming_back_cause_no_sync(reply_delay: float) -> None:
    """The watch brings back both of our writes for each allocation; neither is synced again:
    one sync per new Service (counted, each was a decode, a parse and two comparisons). Also
    when the watch delivers a write before its reply reaches the sync, as a real server's
    often does (`reply_delay`)."""
    kube = await _cluster()
    kube.reply_delay = {"services": reply_delay, "services/status": reply_delay}
    async with leading(kube) as controller:
        syncs: Counter[str] = Counter()
        real_sync = controller.sync.sync

        async def counted(key: str) -> None:
            syncs[key] += 1
            await real_sync(key)

        controller.sync.sync = counted  # type: ignore[method-assign]
        for index in range(5):
            await service(kube, f"s{index}")
        await settled(controller)
        assert all(shown(kube, f"default/s{index}") for index in range(5))
        assert syncs == Counter({f"default/s{index}": 1 for index in range(5)})
        # a change by someone else is synced
        await kube.patch(SERVICES, "default", "s0", {"metadata": {"labels": {"a": "b"}}})
        await settled(controller)
        assert syncs["default/s0"] == 2
