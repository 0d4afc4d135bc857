"""The speaker process plans a Service or endpoint change incrementally and applies only what
changed, on the in-memory fake of our client layer (tests/fakekube.py): a Service created,
deleted, or given a ready endpoint here is announced or withdrawn without a full plan; what
failed (an annotation write, an announcement) is tried again at the next reconcile, and a
failed apply makes the next plan a full one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest

from ccm.contract import names
from ccm.kube.client import ApiError
from ccm.kube.leader import micro_time
from ccm.kube.resources import ENDPOINTSLICES, L2ADVERTISEMENTS, LEASES, NODES, SERVICES
from ccm.speaker.election import owner
from ccm.speaker.process import Speaker
from ccm.speaker.settings import SpeakerSettings
from tests.fakekube import FakeKube
from tests.unit.speaker.test_process_contract import until

NODE = "n1"
VIP = "192.0.2.20"


async def lb_service(fake: FakeKube, name: str, ip: str, **spec: Any) -> None:
    created = await fake.create(SERVICES, "default", {
        "metadata": {"name": name, "annotations": {names.ANN_ALLOCATED_FROM: "lan"}},
        "spec": {"type": "LoadBalancer", **spec}})
    created["status"] = {"loadBalancer": {"ingress": [{"ip": ip}]}}
    await fake.replace(SERVICES, "default", name, created, subresource="status")


@pytest.fixture
async def cluster() -> FakeKube:
    fake = FakeKube()
    await fake.create(NODES, None, {"metadata": {"name": NODE}})
    await fake.create(L2ADVERTISEMENTS, None, {
        "apiVersion": names.API_VERSION, "kind": "L2Advertisement",
        "metadata": {"name": "all"}, "spec": {}})
    await lb_service(fake, "web", VIP)
    return fake


@pytest.fixture
async def speaker(cluster: FakeKube) -> AsyncIterator[Speaker]:
    # a lease long enough that our own liveness never lapses (which would re-plan everything)
    settings = SpeakerSettings(
        node_name=NODE, namespace="kube-system", announcer="log", bgp=False, health_port=0,
        renew_interval=0.1, lease_duration=1.0, fence_after=0.8, coalesce_seconds=0.01,
        address_lifetime=0)
    running = Speaker(settings, client=cast(Any, cluster))
    await running.start()
    await until(lambda: VIP in running.l2_owned)
    try:
        yield running
    finally:
        await running.stop()


def plans(speaker: Speaker, kind: str) -> float:
    return speaker.registry.get_sample_value(
        "vipam_speaker_plan_cpu_seconds_count", {"kind": kind}) or 0.0


def annotation(cluster: FakeKube, name: str) -> str | None:
    obj = cluster.stored(SERVICES, "default", name)
    return cast(str | None, (obj["metadata"].get("annotations") or {}).get(
        names.ANN_ANNOUNCING_NODE))


def settled(speaker: Speaker) -> Callable[[], bool]:
    return lambda: not speaker.dirty.is_set() and not speaker.planner.pending


async def test_service_and_endpoint_changes_are_planned_alone(
    cluster: FakeKube, speaker: Speaker,
) -> None:
    await until(lambda: annotation(cluster, "web") == NODE)
    full = plans(speaker, "full")
    incremental = plans(speaker, "incremental")

    await lb_service(cluster, "new", "192.0.2.21")
    await until(lambda: "192.0.2.21" in speaker.l2_owned and annotation(cluster, "new") == NODE)
    await cluster.delete(SERVICES, "default", "new")
    await until(lambda: "192.0.2.21" not in speaker.l2_owned
                and "192.0.2.21" not in speaker.plan.l2)

    # Local: announced from here once this node has a ready endpoint, withdrawn when not
    await lb_service(cluster, "local", "192.0.2.22", externalTrafficPolicy="Local")
    await until(lambda: "192.0.2.22" in speaker.plan.l2)
    assert "192.0.2.22" not in speaker.l2_owned
    endpoints = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                 "metadata": {"name": "local-x", "labels": {
                     "kubernetes.io/service-name": "local"}},
                 "endpoints": [{"nodeName": NODE, "conditions": {"ready": True}}]}
    await cluster.create(ENDPOINTSLICES, "default", endpoints)
    await until(lambda: "192.0.2.22" in speaker.l2_owned)
    endpoints = cluster.stored(ENDPOINTSLICES, "default", "local-x")
    endpoints["endpoints"][0]["conditions"]["ready"] = False
    await cluster.replace(ENDPOINTSLICES, "default", "local-x", endpoints)
    await until(lambda: "192.0.2.22" not in speaker.l2_owned)

    await until(settled(speaker))
    assert plans(speaker, "full") == full  # none of it re-planned every Service
    assert plans(speaker, "incremental") > incremental
    assert VIP in speaker.l2_owned
    assert speaker.status()["l2"] == {VIP: "default/web"}
    assert speaker.announced_gauge.labels(mode="l2")._value.get() == 1


async def test_a_failed_annotation_is_written_at_the_next_reconcile(
    cluster: FakeKube, speaker: Speaker,
) -> None:
    failed = cluster.fail_next("patch", str(SERVICES), ApiError(500, "InternalError", "boom"))
    await lb_service(cluster, "first", "192.0.2.23")
    await until(lambda: failed() == 1 and "192.0.2.23" in speaker.l2_owned)
    await until(settled(speaker))
    assert annotation(cluster, "first") is None
    # any later change, even one that concerns another Service, retries the write
    await lb_service(cluster, "second", "192.0.2.24")
    await until(lambda: annotation(cluster, "first") == NODE
                and annotation(cluster, "second") == NODE)


async def test_a_failed_announcement_is_retried_and_a_failed_apply_replans_everything(
    cluster: FakeKube, speaker: Speaker, monkeypatch: pytest.MonkeyPatch,
) -> None:
    announce = speaker.announcer.announce
    calls: list[str] = []

    async def fails_once(ip: str, interface: str) -> None:
        calls.append(ip)
        if len(calls) == 1:
            raise OSError("injected: address refused")
        await announce(ip, interface)

    monkeypatch.setattr(speaker.announcer, "announce", fails_once)
    full = plans(speaker, "full")
    await lb_service(cluster, "flaky", "192.0.2.25")
    # the next reconcile (here the one our own annotation write triggers) tries again
    await until(lambda: "192.0.2.25" in speaker.l2_owned)
    assert calls == ["192.0.2.25", "192.0.2.25"]
    assert any("injected" in error["error"] for error in speaker.last_errors)
    assert plans(speaker, "full") == full
    await lb_service(cluster, "other", "192.0.2.26")
    await until(lambda: "192.0.2.26" in speaker.l2_owned)

    withdraw = speaker.announcer.withdraw
    broken: list[str] = []

    async def withdraw_fails_once(ip: str) -> None:
        broken.append(ip)
        if len(broken) == 1:
            raise OSError("injected: withdraw failed")
        await withdraw(ip)

    monkeypatch.setattr(speaker.announcer, "withdraw", withdraw_fails_once)
    await cluster.delete(SERVICES, "default", "other")
    # the reconcile that failed is followed by a full plan, which withdraws it after all
    await until(lambda: "192.0.2.26" not in speaker.l2_owned)
    assert broken == ["192.0.2.26", "192.0.2.26"]
    assert plans(speaker, "full") > full
    assert {"192.0.2.25", VIP} <= speaker.l2_owned.keys()


async def test_another_speaker_joining_and_leaving_is_a_re_election(
    cluster: FakeKube, speaker: Speaker,
) -> None:
    """Another node's speaker comes (its Lease renewed) and goes (its Lease released): the
    addresses it wins move to it and come back, each time by electing every address again
    (kind live), never by a full plan, and the annotations follow."""
    pairs = [(f"192.0.2.{30 + i}", f"2001:db8::{30 + i:x}") for i in range(12)]
    for i, ips in enumerate(pairs):
        created = await cluster.create(SERVICES, "default", {
            "metadata": {"name": f"s{i}", "annotations": {names.ANN_ALLOCATED_FROM: "lan"}},
            "spec": {"type": "LoadBalancer"}})
        created["status"] = {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}}
        await cluster.replace(SERVICES, "default", f"s{i}", created, subresource="status")
    every = [ip for ips in pairs for ip in ips]
    await until(lambda: all(ip in speaker.l2_owned for ip in every))
    await cluster.create(NODES, None, {"metadata": {"name": "n2"}})
    # (settled alone can hold before the Node's event arrives; then the full plan that event
    # asks for would come after the count below and take the join with it, as CI once saw)
    await until(lambda: "n2" in speaker.informers["nodes"].cache and settled(speaker)())
    full, live = plans(speaker, "full"), plans(speaker, "live")
    both = frozenset({NODE, "n2"})
    theirs = [ip for ip in every if owner(ip, both) == "n2"]
    # a Service whose first address stays here and whose second goes: its annotation names both
    split = next(i for i, (v4, v6) in enumerate(pairs)
                 if owner(v4, both) == NODE and owner(v6, both) == "n2")

    lease = f"{names.SPEAKER_LEASE_PREFIX}n2"
    await cluster.create(LEASES, "kube-system", {
        "metadata": {"name": lease}, "spec": {"holderIdentity": "n2", "renewTime": micro_time()}})

    async def renew_n2() -> None:
        while True:
            await asyncio.sleep(0.1)
            obj = cluster.stored(LEASES, "kube-system", lease)
            obj["spec"]["renewTime"] = micro_time()
            await cluster.replace(LEASES, "kube-system", lease, obj)

    renewing = asyncio.create_task(renew_n2())
    try:
        # the log announcer hears no claim: a handover lets go at once
        await until(lambda: not any(ip in speaker.l2_owned for ip in theirs))
        await until(lambda: annotation(cluster, f"s{split}") == f"{NODE},n2")
        assert all(ip in speaker.l2_owned for ip in every if ip not in theirs)
        assert plans(speaker, "live") > live
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
    joined = plans(speaker, "live")
    released = cluster.stored(LEASES, "kube-system", lease)
    released["spec"]["holderIdentity"] = ""
    await cluster.replace(LEASES, "kube-system", lease, released)
    await until(lambda: all(ip in speaker.l2_owned for ip in every))
    await until(lambda: annotation(cluster, f"s{split}") == NODE)
    await until(settled(speaker))
    assert plans(speaker, "live") > joined
    assert plans(speaker, "full") == full  # neither the join nor the leave planned from scratch
