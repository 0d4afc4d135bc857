"""The external-IPAM flow of a Service, the controller on the in-memory client and its backend
the reference IPAM (devkit/reference_ipam.py) over real HTTP on 127.0.0.1.

What the flow promises (ccm/controller/external.py): the key goes on the Service before the
backend is asked, the backend's answer is what the Service shows, a failing backend is reported
and retried without losing anyone's address, a deletion releases once, and a restart between
"key recorded" and "answer written" ends with the same single address, not a second one.
"""

from __future__ import annotations

import base64
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ccm.contract import names
from ccm.kube.client import JSON
from ccm.kube.resources import SECRETS, SERVICES
from devkit.reference_ipam import ReferenceServer
from pools.external import AllocationKey
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

TOKEN = "unit-token-0123456789"
CLUSTER = "lab"
BACKEND_POOL = "lab-v4"


@pytest.fixture
async def ipam() -> AsyncIterator[ReferenceServer]:
    server = ReferenceServer({BACKEND_POOL: ["198.51.100.0/29"]}, token=TOKEN)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def kube(ipam: ReferenceServer) -> FakeKube:
    kube = FakeKube()
    await namespace(kube, "default")
    await kube.create(SECRETS, "kube-system", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ipam-token"},
        "data": {"token": base64.b64encode(TOKEN.encode()).decode()},
    })
    await pool(kube, "ext", external={
        "provider": "http", "url": ipam.url, "secretRef": {"name": "ipam-token"},
        "timeoutSeconds": 1, "options": {"pool": BACKEND_POOL},
    })
    return kube


def held(ipam: ReferenceServer) -> dict[str, str]:
    """Service uid -> address, as the IPAM records it for this cluster."""
    return {r.key.service_uid: r.ip for r in ipam.ipam.list(CLUSTER)}


def calls(ipam: ReferenceServer, uid: str) -> Counter[str]:
    """Contract requests about one Service, by method."""
    return Counter(r.split()[0] for r in ipam.requests if f"/{uid}/" in r)


def uid_of(kube: FakeKube, key: str) -> str:
    return str(stored_service(kube, key)["metadata"]["uid"])


def service_annotations(kube: FakeKube, key: str) -> dict[str, str]:
    result: dict[str, str] = stored_service(kube, key)["metadata"].get("annotations") or {}
    return result


def leader(kube: FakeKube, **overrides: Any) -> Any:
    return leading(kube, cluster_id=CLUSTER, **overrides)


async def test_the_key_is_on_the_service_before_the_backend_is_asked_and_its_answer_shown(
    kube: FakeKube, ipam: ReferenceServer,
) -> None:
    at_commit: list[JSON] = []
    commit = ipam.ipam.allocate

    def spy(*args: Any, **kwargs: Any) -> Any:
        at_commit.append(stored_service(kube, "default/web"))  # what the server holds now
        return commit(*args, **kwargs)

    ipam.ipam.allocate = spy  # type: ignore[method-assign]
    async with leader(kube) as controller:
        await service(kube, "web")
        ip = (await wait_for(lambda: shown(kube, "default/web"), 5, "an address"))[0]
        await settled(controller)
    uid = uid_of(kube, "default/web")
    (before,) = at_commit
    assert before["metadata"]["annotations"][names.ANN_EXTERNAL_KEY] == f"{CLUSTER}/{uid}"
    assert names.FINALIZER in before["metadata"]["finalizers"]
    assert not (before.get("status") or {}).get("loadBalancer")  # nothing shown yet
    assert held(ipam) == {uid: ip}  # the backend chose the address; the Service shows it
    assert ip.startswith("198.51.100.")
    assert service_annotations(kube, "default/web")[names.ANN_ALLOCATED_FROM] == "ext"
    assert condition(kube, "default/web")["status"] == "True"
    assert calls(ipam, uid) == Counter({"PUT": 1})


async def test_a_failing_backend_is_reported_retried_and_loses_no_address(
    kube: FakeKube, ipam: ReferenceServer,
) -> None:
    async with leader(kube) as controller:
        await service(kube, "early")
        early = await wait_for(lambda: shown(kube, "default/early"), 5, "early's address")
        await settled(controller)
        ipam.faults.fail(503, times=10_000)
        await service(kube, "late")
        failed = await wait_for(
            lambda: condition(kube, "default/late").get("reason") == "ExternalPool"
            and condition(kube, "default/late"), 5, "the failure condition")
        assert failed["status"] == "False"
        assert "external IPAM of pool ext failed" in failed["message"]
        await wait_for(lambda: events(kube, "late", names.REASON_FAILED), 5, "the Event")
        late_uid = uid_of(kube, "default/late")
        await wait_for(lambda: calls(ipam, late_uid)["PUT"] >= 4, 10, "retries")
        assert controller.external.status()["ext"]["healthy"] is False
        assert shown(kube, "default/early") == early  # nobody lost anything meanwhile
        assert shown(kube, "default/late") == ()
        ipam.faults.fail_next.clear()
        late = await wait_for(lambda: shown(kube, "default/late"), 15, "late after recovery")
        await settled(controller)
        assert late != early
        assert condition(kube, "default/late")["status"] == "True"
        assert controller.external.status()["ext"]["healthy"] is True
    assert held(ipam) == {uid_of(kube, "default/early"): early[0], late_uid: late[0]}
    assert len(events(kube, "late", names.REASON_FAILED)) == 1  # reported once, not per retry


async def test_deleting_the_service_releases_its_address_in_the_backend_once(
    kube: FakeKube, ipam: ReferenceServer,
) -> None:
    async with leader(kube) as controller:
        await service(kube, "web")
        (ip,) = await wait_for(lambda: shown(kube, "default/web"), 5, "an address")
        await settled(controller)
        uid = uid_of(kube, "default/web")
        await kube.delete(SERVICES, "default", "web")
        await wait_for(lambda: ("services", "default", "web") not in kube.objects, 5, "gone")
        await wait_for(lambda: not held(ipam), 5, "the backend release")
        await settled(controller)
        for _ in range(3):  # more syncs of the gone Service release nothing again
            await controller.sync.sync("default/web")
    assert calls(ipam, uid) == Counter({"PUT": 1, "DELETE": 1})
    assert f"DELETE /v1/clusters/{CLUSTER}/allocations/{uid}/IPv4" in ipam.requests
    assert events(kube, "web", names.REASON_RELEASED)
    assert ip not in held(ipam).values()


async def test_a_restart_after_the_backend_committed_keeps_the_one_address(
    kube: FakeKube, ipam: ReferenceServer,
) -> None:
    """The last controller wrote the key, the backend committed, then it died before writing
    the answer on the Service. The next one asks with the same key and gets the same address."""
    await service(kube, "web")
    uid = uid_of(kube, "default/web")

    def keyed(obj: JSON) -> None:  # what the sync writes before it asks the backend
        obj["metadata"]["annotations"][names.ANN_EXTERNAL_KEY] = f"{CLUSTER}/{uid}"
        obj["metadata"]["finalizers"] = [names.FINALIZER]

    kube.tamper(SERVICES, "default", "web", keyed)
    record, _ = ipam.ipam.allocate(
        AllocationKey(CLUSTER, uid, "IPv4"), "default/web", None, None, BACKEND_POOL)
    ipam.ipam.allocate(  # someone else's address, so "the first free one" is not the answer
        AllocationKey("other-cluster", "x", "IPv4"), "x/y", None, None, BACKEND_POOL)
    async with leader(kube) as controller:
        await wait_for(lambda: shown(kube, "default/web"), 5, "the address")
        await settled(controller)
    assert shown(kube, "default/web") == (record.ip,)
    assert held(ipam) == {uid: record.ip}
    assert calls(ipam, uid) == Counter({"PUT": 1})


async def test_a_restart_while_the_backend_request_is_in_flight_makes_no_second_address(
    kube: FakeKube, ipam: ReferenceServer,
) -> None:
    """Stopped between "key recorded" and "answer received", with the request on its way: the
    next controller finds the key on the Service and asks again with it. One record in the
    backend, one address on the Service, whichever way the lost request went."""
    ipam.faults.delay_seconds = 0.5
    async with leader(kube):
        await service(kube, "web")
        await wait_for(
            lambda: names.ANN_EXTERNAL_KEY in service_annotations(kube, "default/web"), 5,
            "the key on the Service")
        await wait_for(lambda: ipam.requests, 15, "the backend request")
    assert shown(kube, "default/web") == ()  # stopped before the answer was written
    uid = uid_of(kube, "default/web")
    assert names.FINALIZER in stored_service(kube, "default/web")["metadata"]["finalizers"]
    ipam.faults.delay_seconds = 0.0
    async with leader(kube) as controller:
        (ip,) = await wait_for(lambda: shown(kube, "default/web"), 15,
                               "the address after restart")
        await settled(controller)
    assert held(ipam) == {uid: ip}
    assert calls(ipam, uid)["PUT"] == 2  # the lost one and the resumed one, same key
    assert service_annotations(kube, "default/web")[names.ANN_EXTERNAL_KEY] == (
        f"{CLUSTER}/{uid}")


async def test_an_answer_lost_after_the_backend_committed_is_asked_again_for_the_same_one(
    kube: FakeKube, ipam: ReferenceServer,
) -> None:
    ipam.faults.crash_after_commit = 1  # the IPAM commits, then the connection drops
    async with leader(kube) as controller:
        await service(kube, "web")
        (ip,) = await wait_for(lambda: shown(kube, "default/web"), 10, "the address")
        await settled(controller)
    uid = uid_of(kube, "default/web")
    assert held(ipam) == {uid: ip}
    assert calls(ipam, uid)["PUT"] == 2


async def test_a_service_deleted_between_the_backend_commit_and_the_answer_is_released(
    kube: FakeKube, ipam: ReferenceServer,
) -> None:
    """The key and finalizer are written before the backend is asked "so a deletion is always
    seen" (external.py): a Service deleted after the backend committed, before any address was
    shown, must still give the address back when the deletion is processed, not only when the
    reconcile grace period (300 s by default) has passed."""
    await service(kube, "web")
    uid = uid_of(kube, "default/web")

    def keyed(obj: JSON) -> None:
        obj["metadata"]["annotations"][names.ANN_EXTERNAL_KEY] = f"{CLUSTER}/{uid}"
        obj["metadata"]["finalizers"] = [names.FINALIZER]

    kube.tamper(SERVICES, "default", "web", keyed)
    ipam.ipam.allocate(AllocationKey(CLUSTER, uid, "IPv4"), "default/web", None, None,
                       BACKEND_POOL)
    await kube.delete(SERVICES, "default", "web")  # held by the finalizer
    async with leader(kube) as controller:
        await wait_for(lambda: ("services", "default", "web") not in kube.objects, 5, "gone")
        await settled(controller)
        await wait_for(lambda: not held(ipam), 5, "the backend release")
    assert calls(ipam, uid)["DELETE"] == 1


class _Stamped(list[str]):
    """The reference server's request log, with the time each request arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.at: list[float] = []

    def append(self, item: str) -> None:
        self.at.append(time.monotonic())
        super().append(item)


async def test_a_backend_retry_after_spaces_the_retries(
    kube: FakeKube, ipam: ReferenceServer,
) -> None:
    """A busy IPAM answers 503 with Retry-After: 1. No request reaches it sooner than that:
    not the retry inside the backend call, not the work queue's retry, and not the sync that
    the Service's own failure-status write triggers at once (that one used to ask again
    within milliseconds)."""
    async with leader(kube) as controller:
        await wait_for(lambda: controller.external.status().get("ext", {}).get("checked_at"),
                       5, "the first reconcile round (its list would take a failure)")
        log = _Stamped()
        ipam.requests = log
        ipam.faults.fail(503, times=3, retry_after=1)
        await service(kube, "web")
        (ip,) = await wait_for(lambda: shown(kube, "default/web"), 15, "the address")
        await settled(controller)
    puts = [at for at, line in zip(log.at, log, strict=True) if line.startswith("PUT ")]
    assert len(puts) == 4  # three turned away, the fourth served
    gaps = [later - earlier for earlier, later in itertools.pairwise(puts)]
    assert all(gap >= 0.95 for gap in gaps), gaps
    assert held(ipam) == {uid_of(kube, "default/web"): ip}
    assert len(events(kube, "web", names.REASON_FAILED)) == 1
