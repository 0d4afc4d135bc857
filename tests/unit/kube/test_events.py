"""The Event recorder: off the sync path, ordered, aggregated, bounded, flushed on stop.

Counted on the in-memory client (tests/fakekube.py): every assertion is about requests made.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from ccm.contract import names
from ccm.kube.client import ApiError
from ccm.kube.events import DEFER_POLL, EventRecorder
from ccm.kube.resources import EVENTS, SERVICES
from tests.fakekube import FakeKube


def obj(name: str, uid: str | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "uid": uid or f"u-{name}"}}


def events(kube: FakeKube) -> list[dict[str, Any]]:
    return sorted(
        (o for (res, _, _), o in kube.objects.items() if res == str(EVENTS)),
        key=lambda o: int(o["metadata"]["resourceVersion"]),
    )


async def drained(recorder: EventRecorder) -> None:
    async with asyncio.timeout(5):
        while recorder.pending:
            await asyncio.sleep(0.005)


async def test_emit_returns_before_any_request_and_the_drain_writes_in_order() -> None:
    kube = FakeKube()
    recorder = EventRecorder(kube, "test", host="h")
    for index in range(5):
        recorder.emit(obj(f"s{index}"), "Normal", "Allocated", f"Assigned {index}")
    assert kube.requests[("create", "events")] == 0  # nothing written inside emit
    assert recorder.pending == 5
    await drained(recorder)
    assert [e["involvedObject"]["name"] for e in events(kube)] == [f"s{i}" for i in range(5)]
    assert [e["message"] for e in events(kube)] == [f"Assigned {i}" for i in range(5)]
    assert recorder.recorded == 5
    await recorder.stop()


async def test_repeats_while_queued_fold_into_one_create_with_their_count() -> None:
    kube = FakeKube()
    recorder = EventRecorder(kube, "test", host="h")
    for _ in range(7):
        recorder.emit(obj("web"), "Warning", "AllocationFailed", "pool full")
    recorder.emit(obj("web"), "Warning", "AllocationFailed", "another message")
    await drained(recorder)
    assert kube.writes("events") == Counter({("create", "events"): 2})
    first, second = events(kube)
    assert (first["message"], first["count"]) == ("pool full", 7)
    assert (second["message"], second["count"]) == ("another message", 1)
    assert recorder.aggregated == 6
    await recorder.stop()


async def test_a_repeat_after_the_write_patches_the_count() -> None:
    kube = FakeKube()
    recorder = EventRecorder(kube, "test", host="h")
    recorder.emit(obj("web"), "Warning", "AllocationFailed", "pool full")
    await drained(recorder)
    recorder.emit(obj("web"), "Warning", "AllocationFailed", "pool full")
    recorder.emit(obj("web"), "Warning", "AllocationFailed", "pool full")
    await drained(recorder)
    assert kube.writes("events") == Counter({("create", "events"): 1, ("patch", "events"): 1})
    (event,) = events(kube)
    assert event["count"] == 3
    await recorder.stop()


async def test_a_full_queue_drops_and_counts_new_events() -> None:
    kube = FakeKube()
    recorder = EventRecorder(kube, "test", host="h", max_queued=3)
    for index in range(10):
        recorder.emit(obj(f"s{index}"), "Normal", "Allocated", "x")
    assert recorder.dropped == 7
    await drained(recorder)
    assert [e["involvedObject"]["name"] for e in events(kube)] == ["s0", "s1", "s2"]
    await recorder.stop()


async def test_the_rate_limit_spaces_writes_after_the_burst() -> None:
    kube = FakeKube()
    recorder = EventRecorder(kube, "test", host="h", qps=20, burst=2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for index in range(6):
        recorder.emit(obj(f"s{index}"), "Normal", "Allocated", "x")
    await drained(recorder)
    # 2 from the burst, then 4 at 20/s: at least ~0.2 s
    assert loop.time() - started >= 0.18
    assert recorder.recorded == 6
    await recorder.stop()


async def test_stop_flushes_what_is_queued_and_later_emits_are_dropped() -> None:
    kube = FakeKube()
    recorder = EventRecorder(kube, "test", host="h")
    for index in range(4):
        recorder.emit(obj(f"s{index}"), "Normal", "Allocated", "x")
    await recorder.stop()
    assert len(events(kube)) == 4
    recorder.emit(obj("late"), "Normal", "Allocated", "x")
    assert recorder.dropped == 1 and recorder.pending == 0


async def test_a_refused_event_is_counted_and_does_not_stop_the_drain() -> None:
    kube = FakeKube()
    refused = {"left": 1}

    def fault(verb: str, label: str) -> ApiError | None:
        if label == "events" and refused["left"]:
            refused["left"] -= 1
            return ApiError(403, "Forbidden", "no")
        return None

    kube.faults.append(fault)
    recorder = EventRecorder(kube, "test", host="h")
    recorder.emit(obj("a"), "Normal", "Allocated", "x")
    recorder.emit(obj("b"), "Normal", "Allocated", "x")
    await drained(recorder)
    assert recorder.failed == 1 and recorder.recorded == 1
    assert [e["involvedObject"]["name"] for e in events(kube)] == ["b"]
    await recorder.stop()


async def test_not_allowed_records_nothing() -> None:
    kube = FakeKube()
    recorder = EventRecorder(kube, "test", host="h", allowed=lambda: False)
    recorder.emit(obj("a"), "Normal", "Allocated", "x")
    assert recorder.pending == 0
    await recorder.stop()
    assert kube.writes() == Counter()


async def test_a_sync_returns_while_its_event_post_is_still_blocked() -> None:
    """The address is written and the sync done although the events API hangs."""
    from tests.unit.controller.fakecluster import leading, namespace, pool, service, shown

    kube = FakeKube()
    await namespace(kube, "default")
    await pool(kube, "lan", "192.0.2.0/28")
    release = asyncio.Event()
    create = kube.create

    async def slow_create(res: Any, namespace: str | None, body: Any) -> Any:
        if res == EVENTS:
            await release.wait()
        return await create(res, namespace, body)

    kube.create = slow_create  # type: ignore[method-assign]
    async with leading(kube) as controller:
        await service(kube, "web")
        async with asyncio.timeout(5):
            while not shown(kube, "default/web"):
                await asyncio.sleep(0.01)
        await controller.sync.sync("default/web")  # returns: no Event POST on its path
        assert kube.requests[("create", "events")] == 0
        assert controller.recorder.pending == 1
        release.set()
    # stop() flushed it
    assert [e["reason"] for e in events(kube)] == [names.REASON_ALLOCATED]
    assert kube.stored(SERVICES, "default", "web")["status"]["loadBalancer"]["ingress"]


async def test_events_wait_while_the_owner_is_busy_and_follow_once_it_is_quiet() -> None:
    """Addresses first: while the work queue has Services, and for `quiet` s after, Events
    are held back; then they all go."""
    kube = FakeKube()
    busy = True
    recorder = EventRecorder(kube, "test", host="h", busy=lambda: busy, max_defer=30,
                             quiet=0.3)
    for index in range(3):
        recorder.emit(obj(f"s{index}"), "Normal", "Allocated", f"Assigned {index}")
    await asyncio.sleep(0.3)
    assert kube.requests[("create", "events")] == 0 and recorder.pending == 3
    loop = asyncio.get_running_loop()
    busy = False
    idle_from = loop.time()
    await asyncio.sleep(0.15)  # idle, but not for `quiet` yet: a gap between two Services
    assert kube.requests[("create", "events")] == 0
    await drained(recorder)
    assert kube.requests[("create", "events")] == 3
    # (busy is looked at every DEFER_POLL s: the last yes may be that much before idle_from)
    assert loop.time() - idle_from >= 0.3 - DEFER_POLL
    await recorder.stop()


async def test_a_held_back_event_waits_at_most_max_defer() -> None:
    """Work that never stops must not starve the Events: each waits max_defer at most."""
    kube = FakeKube()
    recorder = EventRecorder(kube, "test", host="h", busy=lambda: True, max_defer=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    recorder.emit(obj("s0"), "Normal", "Allocated", "Assigned")
    await asyncio.sleep(0.1)
    assert kube.requests[("create", "events")] == 0
    await drained(recorder)
    assert kube.requests[("create", "events")] == 1
    assert loop.time() - started >= 0.3
    await recorder.stop()


async def test_a_repeat_of_a_held_back_event_folds_into_it() -> None:
    kube = FakeKube()
    busy = True
    recorder = EventRecorder(kube, "test", host="h", busy=lambda: busy, max_defer=30,
                             quiet=0.05)
    recorder.emit(obj("s0"), "Warning", "Failed", "pool empty")
    recorder.emit(obj("s0"), "Warning", "Failed", "pool empty")
    await asyncio.sleep(0.1)
    busy = False
    await drained(recorder)
    assert kube.requests[("create", "events")] == 1 and recorder.aggregated == 1
    assert [e["count"] for e in events(kube)] == [2]
    await recorder.stop()


async def test_stop_flushes_held_back_events() -> None:
    kube = FakeKube()
    recorder = EventRecorder(kube, "test", host="h", busy=lambda: True, max_defer=60)
    recorder.emit(obj("s0"), "Normal", "Allocated", "Assigned")
    await asyncio.sleep(0.1)
    await recorder.stop()
    assert kube.requests[("create", "events")] == 1 and recorder.dropped == 0
