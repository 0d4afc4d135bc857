"""The Lease leader elector on the in-memory client, with a clock the test steps.

Expiry, the renew deadline and the fence are judged on the elector's monotonic clock; here that
clock is the test's, so "15 s later" takes no time and no test depends on the machine's speed.
The loops still pace themselves with real (short) sleeps: retry_period is 0.05 s of real time.
Lease writes are counted as requests, never inferred from resourceVersions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from ccm.kube.client import JSON, ApiError
from ccm.kube.leader import ElectionTiming, LeaderElector, micro_time
from ccm.kube.resources import LEASES
from tests.fakekube import FakeKube

NS, NAME = "kube-system", "vipam-controller"
LEASE = str(LEASES)
TIMING = ElectionTiming(lease_duration=15.0, renew_deadline=10.0, retry_period=0.05)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terms:
    """Counts the callbacks and checks they alternate: started, stopped, started, ..."""

    def __init__(self) -> None:
        self.started = 0
        self.stopped = 0

    async def start(self) -> None:
        assert self.started == self.stopped, "started twice without a stop"
        self.started += 1

    async def stop(self) -> None:
        assert self.started == self.stopped + 1, "stopped without a start"
        self.stopped += 1


def elector(
    kube: FakeKube, identity: str, clock: Clock, terms: Terms | None = None
) -> LeaderElector:
    return LeaderElector(
        kube, namespace=NS, name=NAME, identity=identity, timing=TIMING, clock=clock,
        on_started_leading=terms.start if terms else None,
        on_stopped_leading=terms.stop if terms else None,
    )


async def held_by(kube: FakeKube, holder: str, transitions: int = 0) -> None:
    """A Lease as another replica left it: renewed just now, 15 s duration."""
    now = micro_time()
    await kube.create(LEASES, NS, {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "acquireTime": now,
                 "renewTime": now, "leaseTransitions": transitions},
    })


def spec(kube: FakeKube) -> dict[str, Any]:
    result: dict[str, Any] = kube.stored(LEASES, NS, NAME)["spec"]
    return result


def lease_updates(kube: FakeKube) -> int:
    return kube.requests[("update", LEASE)]


async def until(probe: Callable[[], Any], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def more(kube: FakeKube, verb: str, count: int) -> None:
    """Wait until `count` more Lease requests of `verb` were made (campaign or renew rounds)."""
    target = kube.requests[(verb, LEASE)] + count
    await until(lambda: kube.requests[(verb, LEASE)] >= target, f"{count} more {verb}s")


@contextlib.asynccontextmanager
async def campaigning(*electors: LeaderElector) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(e.run()) for e in electors]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_a_missing_lease_is_created_and_held() -> None:
    kube, clock, terms = FakeKube(), Clock(), Terms()
    me = elector(kube, "a", clock, terms)
    assert not me.is_leader()
    async with campaigning(me):
        await until(me.is_leader, "leadership")
        await until(lambda: terms.started == 1, "the started callback")
        lease = spec(kube)
        assert lease["holderIdentity"] == "a"
        assert lease["leaseTransitions"] == 0
        assert lease["leaseDurationSeconds"] == 15
        assert me.observed_holder == "a"
    assert kube.requests[("create", LEASE)] == 1
    assert (terms.started, terms.stopped) == (1, 0)


async def test_a_held_unexpired_lease_is_not_taken() -> None:
    kube, clock, terms = FakeKube(), Clock(), Terms()
    await held_by(kube, "other")
    me = elector(kube, "a", clock, terms)
    async with campaigning(me):
        await more(kube, "get", 5)
        clock.now += 14.9  # unchanged for less than its 15 s duration
        await more(kube, "get", 5)
        assert not me.is_leader()
        assert me.observed_holder == "other"
    assert spec(kube)["holderIdentity"] == "other"
    assert lease_updates(kube) == 0
    assert kube.requests[("create", LEASE)] == 1  # the test's own
    assert terms.started == 0


async def test_a_renewing_holder_keeps_the_lease_however_old_it_is() -> None:
    """Expiry counts from the last change we saw, on our clock: a renewal restarts it."""
    kube, clock = FakeKube(), Clock()
    await held_by(kube, "other")
    me = elector(kube, "a", clock)
    async with campaigning(me):
        for _ in range(4):  # 40 s in all, but never 15 s without a renewal
            await until(lambda: me.observed_holder == "other", "a campaign round")
            clock.now += 10.0
            kube.tamper(LEASES, NS, NAME, lambda obj: obj["spec"].update(renewTime=micro_time()))
            await more(kube, "get", 3)
        assert not me.is_leader()
    assert spec(kube)["holderIdentity"] == "other"
    assert lease_updates(kube) == 0


async def test_an_expired_lease_is_taken_and_the_transition_counted() -> None:
    kube, clock, terms = FakeKube(), Clock(), Terms()
    await held_by(kube, "dead", transitions=3)
    me = elector(kube, "a", clock, terms)
    async with campaigning(me):
        await until(lambda: me.observed_holder == "dead", "the first look at the lease")
        await asyncio.sleep(0.2)
        assert not me.is_leader()
        clock.now += 15.1
        await until(me.is_leader, "taking the expired lease")
        lease = spec(kube)
        assert lease["holderIdentity"] == "a"
        assert lease["leaseTransitions"] == 4
        assert me.transitions == 4
        assert lease["acquireTime"] == lease["renewTime"]
        await until(lambda: terms.started == 1, "the started callback")
    assert (terms.started, terms.stopped) == (1, 0)


async def test_a_released_lease_is_taken_at_once() -> None:
    kube, clock = FakeKube(), Clock()
    await held_by(kube, "", transitions=1)
    me = elector(kube, "a", clock)
    async with campaigning(me):
        await until(me.is_leader, "leadership without waiting for expiry")
    assert spec(kube)["holderIdentity"] == "a"
    assert spec(kube)["leaseTransitions"] == 2


async def test_the_leader_renews_and_stays_leader_as_time_passes() -> None:
    kube, clock, terms = FakeKube(), Clock(), Terms()
    me = elector(kube, "a", clock, terms)
    async with campaigning(me):
        await until(me.is_leader, "leadership")
        for _ in range(5):  # 5 x 8 s: each step within the renew deadline of the last renewal
            before = spec(kube)["renewTime"]
            clock.now += 8.0
            await more(kube, "update", 1)
            assert me.is_leader()
            assert spec(kube)["renewTime"] != before
        assert spec(kube)["holderIdentity"] == "a"
        assert spec(kube)["leaseTransitions"] == 0  # renewals are not transitions
    assert (terms.started, terms.stopped) == (1, 0)


async def test_renewals_failing_past_the_deadline_end_the_term_then_it_campaigns_again() -> None:
    kube, clock, terms = FakeKube(), Clock(), Terms()
    me = elector(kube, "a", clock, terms)
    async with campaigning(me):
        await until(lambda: terms.started == 1, "leadership")
        outage = ApiError(0, "TransportError", "connection refused")
        failed = kube.fail_next("get", LEASE, outage, times=-1)
        await until(lambda: failed() >= 3, "failing renewals")
        clock.now += 9.9  # still within the renew deadline: still leader, still retrying
        await until(lambda: failed() >= 6, "more failing renewals")
        assert me.is_leader() and terms.stopped == 0
        clock.now += 0.2  # past it: fenced and the term ends, once
        assert not me.is_leader()
        await until(lambda: terms.stopped == 1, "the stopped callback")
        kube.faults.clear()
        # the Lease still names us, so we take it back at once: a new term, the same holder
        await until(lambda: terms.started == 2, "a second term")
        assert me.is_leader()
        assert spec(kube)["leaseTransitions"] == 0
    assert (terms.started, terms.stopped) == (2, 1)


async def test_a_renewal_that_succeeds_only_after_the_deadline_ends_the_term() -> None:
    """A slow server: the write lands, but after the fence fell, so the term is over."""
    kube, clock, terms = FakeKube(), Clock(), Terms()
    me = elector(kube, "a", clock, terms)
    async with campaigning(me):
        await until(lambda: terms.started == 1, "leadership")
        slow = True

        def eleven_seconds(verb: str, label: str) -> ApiError | None:
            nonlocal slow
            if slow and (verb, label) == ("update", LEASE):
                slow = False
                clock.now += 11.0  # the request took longer than the renew deadline
            return None

        kube.faults.append(eleven_seconds)
        await until(lambda: terms.stopped == 1, "the term ended")
        await until(lambda: terms.started == 2, "re-acquired")
    assert not slow
    assert (terms.started, terms.stopped) == (2, 1)


async def test_a_conflict_on_renewal_is_reread_and_another_holder_ends_the_term() -> None:
    """Someone takes the Lease between our read and our write: our PUT gets a real 409; we
    re-read, see a live holder, never overwrite it, and lose at the renew deadline."""
    kube, clock, terms = FakeKube(), Clock(), Terms()
    me = elector(kube, "a", clock, terms)
    async with campaigning(me):
        await until(lambda: terms.started == 1, "leadership")
        stolen = False

        def intruder(verb: str, label: str) -> ApiError | None:
            nonlocal stolen
            if not stolen and (verb, label) == ("update", LEASE):
                stolen = True
                kube.tamper(LEASES, NS, NAME, lambda obj: obj["spec"].update(
                    holderIdentity="b", renewTime=micro_time()))
            return None

        kube.faults.append(intruder)
        conflicts: list[int] = []
        kube.observer = lambda verb, res, status, _: conflicts.append(status) if (
            verb, res, status) == ("update", LEASE, 409) else None
        await until(lambda: conflicts, "the 409")
        await more(kube, "get", 3)
        assert me.observed_holder == "b"
        assert me.is_leader()  # fenced by time only: the deadline has not passed
        updates = lease_updates(kube)
        clock.now += 10.0
        await until(lambda: terms.stopped == 1, "the term ended")
        assert not me.is_leader()
        await asyncio.sleep(0.2)
        assert lease_updates(kube) == updates  # b's lease was never written over
    assert spec(kube)["holderIdentity"] == "b"
    assert (terms.started, terms.stopped) == (1, 1)


async def test_a_conflict_that_clears_keeps_the_term() -> None:
    kube, clock, terms = FakeKube(), Clock(), Terms()
    me = elector(kube, "a", clock, terms)
    async with campaigning(me):
        await until(lambda: terms.started == 1, "leadership")
        failed = kube.fail_next("update", LEASE, ApiError(409, "Conflict", "modified"), times=2)
        updates = lease_updates(kube)
        await until(lambda: failed() == 2 and lease_updates(kube) >= updates + 3, "retries")
        assert me.is_leader()
    assert (terms.started, terms.stopped) == (1, 0)


async def test_release_hands_the_lease_to_a_standby_without_waiting_for_expiry() -> None:
    kube, clock = FakeKube(), Clock()
    first_terms, second_terms = Terms(), Terms()
    first = elector(kube, "a", clock, first_terms)
    second = elector(kube, "b", clock, second_terms)
    leader = asyncio.create_task(first.run())
    standby: asyncio.Task[None] | None = None
    try:
        await until(first.is_leader, "a leads")
        standby = asyncio.create_task(second.run())
        await until(lambda: second.observed_holder == "a", "b sees a")
        await _cancelled(leader)  # as Controller.stop does: the loop first, then release
        await first.release()
        assert not first.is_leader()
        lease = spec(kube)
        assert lease["holderIdentity"] == "" and lease["leaseDurationSeconds"] == 1
        await until(second.is_leader, "b takes over (no clock step)")
        assert spec(kube)["leaseTransitions"] == 1
        assert (second_terms.started, second_terms.stopped) == (1, 0)
    finally:
        for task in (leader, standby):
            if task is not None:
                await _cancelled(task)
    assert first_terms.started == 1


async def test_release_by_a_non_leader_writes_nothing() -> None:
    kube, clock = FakeKube(), Clock()
    await held_by(kube, "other")
    me = elector(kube, "a", clock)
    await me.release()
    assert kube.writes() == {("create", LEASE): 1}  # the test's own create only
    assert spec(kube)["holderIdentity"] == "other"


async def test_two_candidates_never_lead_at_once() -> None:
    kube, clock = FakeKube(), Clock()
    a, b = elector(kube, "a", clock), elector(kube, "b", clock)
    both: list[float] = []

    async def watch() -> None:
        while True:
            if a.is_leader() and b.is_leader():
                both.append(clock.now)
            await asyncio.sleep(0.001)

    watcher = asyncio.create_task(watch())
    try:
        async with campaigning(a, b):
            await until(lambda: a.is_leader() or b.is_leader(), "a leader")
            leader, standby = (a, b) if a.is_leader() else (b, a)
            # the leader's renewals fail; time runs on until the standby may take over
            leader.client = _Failing(kube)  # type: ignore[assignment]
            for _ in range(40):
                clock.now += 1.0
                await asyncio.sleep(0.02)
            await until(standby.is_leader, "the standby takes over")
            assert not leader.is_leader()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    assert both == []


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class _Failing:
    """A client whose every Lease request fails: this replica is cut off from the server."""

    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube

    async def get(self, *args: Any, **kwargs: Any) -> JSON:
        raise ApiError(0, "TransportError", "cut off")

    async def replace(self, *args: Any, **kwargs: Any) -> JSON:
        raise ApiError(0, "TransportError", "cut off")
