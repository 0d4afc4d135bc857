"""InvalidPool and PoolOverlap Events for pools created or edited while the controller leads
(they used to be raised only for pools that were already bad at leadership start)."""

from __future__ import annotations

from ccm.kube.resources import IPPOOLS
from tests.fakekube import FakeKube
from tests.unit.controller.fakecluster import events, leading, namespace, pool, wait_for


async def test_pools_created_and_edited_after_leadership_start_get_events() -> None:
    kube = FakeKube()
    await namespace(kube, "default")
    await pool(kube, "lan", "192.0.2.0/28")
    async with leading(kube):
        await pool(kube, "broken", "198.51.100.0/28", exclude=["203.0.113.1"])
        await pool(kube, "twin", "192.0.2.8/29")
        invalid = await wait_for(lambda: events(kube, "broken", "InvalidPool"), what="InvalidPool")
        assert "exclude[0]" in invalid[0]["message"]
        await wait_for(lambda: events(kube, "twin", "PoolOverlap"), what="PoolOverlap on twin")
        await wait_for(lambda: events(kube, "lan", "PoolOverlap"), what="PoolOverlap on lan")
        # an edit that breaks a good pool
        edited = kube.stored(IPPOOLS, None, "twin")
        edited["spec"]["exclude"] = ["203.0.113.9"]
        await kube.replace(IPPOOLS, None, "twin", edited)
        await wait_for(lambda: events(kube, "twin", "InvalidPool"), what="InvalidPool on twin")
        # an unrelated change does not repeat an Event already raised for the same message
        await pool(kube, "other", "203.0.113.0/28")
        await wait_for(lambda: len(events(kube, "broken", "InvalidPool")) == 1, what="one event")
        assert events(kube, "broken", "InvalidPool")[0].get("count", 1) == 1
