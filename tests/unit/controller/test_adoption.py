"""Adopting what a Service shows (defect 3 of issue 11, and the start-up half of issue 16).

The Services are written as another controller (or an earlier vipam) left them: an address in
status.loadBalancer.ingress and nothing of ours. The fake client accepts a creationTimestamp
given at create time, so "older" and "younger" can be arranged.
"""

from __future__ import annotations

from ccm.contract import names
from tests.fakekube import FakeKube
from tests.unit.controller.fakecluster import (
    condition,
    events,
    leading,
    namespace,
    pool,
    service,
    settled,
    shown,
    stored_service,
    wait_for,
)


async def _cluster() -> FakeKube:
    kube = FakeKube()
    await namespace(kube, "default")
    await pool(kube, "lan", "192.0.2.0/28")
    return kube


async def test_a_holder_evicted_by_an_older_claim_is_synced_again() -> None:
    kube = await _cluster()
    async with leading(kube) as controller:
        await service(kube, "young", created="2030-01-01T00:00:00Z")
        await settled(controller)
        assert shown(kube, "default/young") == ("192.0.2.0",)
        assert condition(kube, "default/young")["status"] == "True"
        await service(kube, "old", created="2020-01-01T00:00:00Z", ip="192.0.2.0")
        await settled(controller)
        assert condition(kube, "default/old")["status"] == "True"
        lost = await wait_for(
            lambda: condition(kube, "default/young").get("reason") == names.REASON_CONFLICT,
            what="the evicted Service reported in conflict",
        )
        assert lost
        assert condition(kube, "default/young")["status"] == "False"
        assert "older Service default/old" in condition(kube, "default/young")["message"]
        assert events(kube, "young", names.REASON_CONFLICT)
        assert controller.allocator.holders("192.0.2.0") == ("default/old",)


async def test_a_claim_does_not_grant_an_address_from_a_pool_not_asked_for() -> None:
    kube = await _cluster()
    async with leading(kube) as controller:
        await service(kube, "picky", annotations={names.ANN_POOL: "nope"}, ip="192.0.2.5")
        await settled(controller)
        state = condition(kube, "default/picky")
        assert (state["status"], state["reason"]) == ("False", "UnknownPool")
        annotations = stored_service(kube, "default/picky")["metadata"].get("annotations") or {}
        assert annotations.get(names.ANN_ALLOCATED_FROM) != "lan"
        # once the pool it asks for exists, it moves there
        await pool(kube, "nope", "198.51.100.0/28")
        await wait_for(lambda: shown(kube, "default/picky") == ("198.51.100.0",),
                       what="the Service moved to the pool it asks for")
        await settled(controller)
        assert condition(kube, "default/picky")["status"] == "True"
        assert controller.allocator.holders("192.0.2.5") == ()


async def _assert_kept_outside(kube: FakeKube, key: str, ip: str) -> None:
    name = key.split("/", 1)[1]
    assert shown(kube, key) == (ip,)
    state = condition(kube, key)
    assert (state["status"], state["reason"]) == ("False", names.REASON_CONFLICT)
    assert "outside every IPPool" in state["message"]
    annotations = stored_service(kube, key)["metadata"].get("annotations") or {}
    assert names.ANN_ALLOCATED_FROM not in annotations
    (event,) = events(kube, name, names.REASON_CONFLICT)
    assert ip in event["message"]


async def test_an_adopted_address_outside_every_pool_is_kept_and_reported_at_start_up() -> None:
    kube = await _cluster()
    await service(kube, "migrated", ip="203.0.113.7")
    async with leading(kube) as controller:
        await settled(controller)
        await _assert_kept_outside(kube, "default/migrated", "203.0.113.7")


async def test_an_adopted_address_outside_every_pool_is_kept_and_reported_while_running() -> None:
    kube = await _cluster()
    async with leading(kube) as controller:
        await service(kube, "migrated", ip="203.0.113.7")
        await settled(controller)
        await _assert_kept_outside(kube, "default/migrated", "203.0.113.7")
        # a pool that covers it makes it an ordinary allocation, without moving it
        await pool(kube, "dmz", "203.0.113.0/28")
        await wait_for(lambda: condition(kube, "default/migrated").get("status") == "True",
                       what="allocated once a pool covers the address")
        assert shown(kube, "default/migrated") == ("203.0.113.7",)
