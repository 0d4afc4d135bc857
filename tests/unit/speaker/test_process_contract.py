"""The speaker process reads BGPPeers through the contract model, on the in-memory fake of our
client layer (tests/fakekube.py): whatever holdTime the CRD and `vipam check` accept works, and
an object the model refuses is reported (log, Event on the object) once, while everything else
is still served."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest

from ccm.contract import names
from ccm.kube.resources import BGPPEERS, EVENTS, L2ADVERTISEMENTS, NODES, SERVICES
from ccm.speaker.plan import ClusterView
from ccm.speaker.process import Speaker
from ccm.speaker.settings import SpeakerSettings
from tests.fakekube import FakeKube

NODE = "n1"
VIP = "192.0.2.10"
LOCAL_VIP = "192.0.2.11"  # externalTrafficPolicy: Local, no endpoint anywhere


def peer(name: str, hold_time: str) -> dict[str, Any]:
    return {"apiVersion": names.API_VERSION, "kind": "BGPPeer", "metadata": {"name": name},
            "spec": {"address": "192.0.2.254", "asn": 64512, "localASN": 64512,
                     "holdTime": hold_time}}


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


@pytest.fixture
async def cluster() -> FakeKube:
    fake = FakeKube()
    await fake.create(NODES, None, {"metadata": {"name": NODE, "labels": {"rack": "r1"}}})
    await fake.create(L2ADVERTISEMENTS, None, {
        "apiVersion": names.API_VERSION, "kind": "L2Advertisement",
        "metadata": {"name": "all"}, "spec": {}})
    svc = await fake.create(SERVICES, "default", {
        "metadata": {"name": "web", "annotations": {names.ANN_ALLOCATED_FROM: "lan"}},
        "spec": {"type": "LoadBalancer"}})
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": VIP}]}}
    await fake.replace(SERVICES, "default", "web", svc, subresource="status")
    local = await fake.create(SERVICES, "default", {
        "metadata": {"name": "local", "annotations": {names.ANN_ALLOCATED_FROM: "lan"}},
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local"}})
    local["status"] = {"loadBalancer": {"ingress": [{"ip": LOCAL_VIP}]}}
    await fake.replace(SERVICES, "default", "local", local, subresource="status")
    # an older CRD (or none) may let through what today's model refuses
    await fake.create(BGPPEERS, None, peer("minutes", "3m"))
    await fake.create(BGPPEERS, None, peer("banana", "banana"))
    return fake


@pytest.fixture
async def speaker(cluster: FakeKube) -> AsyncIterator[Speaker]:
    settings = SpeakerSettings(
        node_name=NODE, namespace="kube-system", announcer="log", bgp=False, health_port=0,
        renew_interval=0.05, lease_duration=0.2, fence_after=0.15, coalesce_seconds=0.01,
        address_lifetime=0)
    running = Speaker(settings, client=cast(Any, cluster))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def plans(speaker: Speaker) -> float:
    """Plans made so far, incremental and full (``vipam_speaker_plan_cpu_seconds``)."""
    return sum(speaker.registry.get_sample_value(
        "vipam_speaker_plan_cpu_seconds_count", {"kind": kind}) or 0.0
        for kind in ("incremental", "full"))


def events(cluster: FakeKube, name: str) -> list[dict[str, Any]]:
    return [e for (res, _, _), e in cluster.objects.items()
            if res == EVENTS.plural and e["involvedObject"]["name"] == name]


async def test_a_hold_time_in_minutes_is_served(speaker: Speaker) -> None:
    await until(lambda: VIP in speaker.l2_owned)
    assert [choice.name for choice in speaker.plan.peers] == ["minutes"]
    (session,) = await speaker._peers(speaker.plan.peers)
    assert session.hold_time == 180 and session.local_asn == 64512


async def test_a_refused_peer_is_reported_once_and_the_rest_served(
    cluster: FakeKube, speaker: Speaker, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "ccm.speaker.process")
    await until(lambda: VIP in speaker.l2_owned and bool(events(cluster, "banana")))
    (event,) = events(cluster, "banana")
    assert event["type"] == "Warning" and event["reason"] == names.REASON_ANNOUNCE_FAILED
    assert "holdTime" in event["message"] and "'banana' is not a duration" in event["message"]
    assert any("BGPPeer banana ignored" in r.getMessage() for r in caplog.records)
    assert any(e["object"] == "bgppeer/banana" for e in speaker.last_errors)
    assert not events(cluster, "minutes")

    # later plans (any change re-plans) do not repeat it: one Event, no count PATCHes
    async def replan() -> None:
        before = plans(speaker)
        speaker._mark_everything()  # a full plan: every object read and checked again
        await until(lambda: plans(speaker) > before)

    for _ in range(3):
        await replan()
    await asyncio.sleep(0.3)  # the recorder writes off the reconcile path
    assert len(events(cluster, "banana")) == 1
    assert ("patch", "events") not in cluster.writes("events")

    # fixed, the peer is served; broken again, it is reported again
    fixed = cluster.stored(BGPPEERS, None, "banana")
    fixed["spec"]["holdTime"] = "90s"
    await cluster.replace(BGPPEERS, None, "banana", fixed)
    await until(lambda: {c.name for c in speaker.plan.peers} == {"minutes", "banana"})
    fixed = cluster.stored(BGPPEERS, None, "banana")
    fixed["spec"]["holdTime"] = "2s"
    await cluster.replace(BGPPEERS, None, "banana", fixed)
    await until(lambda: len(events(cluster, "banana")) == 2)
    assert VIP in speaker.l2_owned


async def test_the_cache_keeps_what_the_plan_reads(speaker: Speaker) -> None:
    """A Local Service without a ready endpoint on this node is not announced from it (an
    informer transform that dropped externalTrafficPolicy would announce it)."""
    await until(lambda: VIP in speaker.l2_owned)
    assert speaker.plan.l2[LOCAL_VIP].candidates == frozenset()
    assert LOCAL_VIP not in speaker.l2_owned


def test_a_node_replans_only_when_its_labels_change() -> None:
    """Kubelets rewrite their Node's status all the time; the plan reads only labels."""
    idle = Speaker(SpeakerSettings(node_name=NODE, announcer="log", bgp=False))
    node = {"metadata": {"name": "n2", "labels": {"rack": "r1"}}}
    idle.planner.update(idle_view(), frozenset({NODE}))
    idle._node_changed("n2", node, {**node, "status": {"conditions": []}})
    assert not idle.dirty.is_set() and not idle.planner.pending
    idle._node_changed("n2", node, {"metadata": {"name": "n2", "labels": {"rack": "r2"}}})
    assert idle.dirty.is_set() and idle.planner.pending  # labels: a full plan
    assert idle.planner.update(idle_view(), frozenset({NODE})).full
    idle.dirty.clear()
    idle._node_changed("n3", None, node)
    assert idle.dirty.is_set() and idle.planner.pending


def idle_view() -> ClusterView:
    return ClusterView(services={}, pools={}, l2_advertisements={}, bgp_advertisements={},
                       peers={}, nodes={}, endpoint_slices={})
