"""L2 election across speakers: one announcer per address, fast failover, O(nodes) API writes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from ccm.contract import names
from ccm.kube.client import KubeClient
from ccm.kube.resources import ENDPOINTSLICES
from ccm.speaker.process import Speaker
from tests.integration.controller.harness import (
    create_pool,
    create_service,
    events_for,
    ingress_ips,
    leading_controller,
    wait_for,
)
from tests.integration.speaker.harness import (
    announcers,
    l2_everywhere,
    make_nodes,
    running_speakers,
)
from tests.realkube import RealApi

NODES = ["node-a", "node-b", "node-c"]


@contextlib.asynccontextmanager
async def _cluster(kube: KubeClient, kubeconfig: Path, speaker_kubeconfig: Path,
                   services: int) -> AsyncIterator[list[Speaker]]:
    """Nodes, pools, an L2Advertisement, a leading controller, `services` Services (a third
    IPv6) and a speaker per node, each on its own ServiceAccount; everything stopped
    afterwards."""
    await make_nodes(kube, NODES)
    await create_pool(kube, "v4", addresses=["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"])
    await create_pool(kube, "v6", addresses=["2001:db8:7::/64"])
    await l2_everywhere(kube)
    async with leading_controller(kubeconfig):
        sem = asyncio.Semaphore(32)

        async def make(i: int) -> None:
            async with sem:
                families = ["IPv6"] if i % 3 == 0 else None
                await create_service(kube, f"s{i}", families=families)

        await asyncio.gather(*(make(i) for i in range(services)))
        async with running_speakers(speaker_kubeconfig, NODES) as speakers:
            yield speakers


def _all_addresses(emu: RealApi) -> set[str]:
    return {ip for svc in emu.list_objects("services") for ip in ingress_ips(svc)}


def _exactly_one_each(emu: RealApi, speakers: list[Speaker]) -> bool:
    return _one_each(_all_addresses(emu), speakers)


def _one_each(wanted: set[str], speakers: list[Speaker]) -> bool:
    """Every wanted address announced by exactly one of `speakers` (in memory: cheap enough
    to poll while timing a handover, unlike a listing from the server)."""
    current = announcers(speakers)
    return bool(wanted) and set(current) == wanted and all(
        len(nodes) == 1 for nodes in current.values()
    )


async def test_one_announcer_per_address_and_failover_under_two_seconds(
    emu: RealApi, kube: KubeClient, kubeconfig: Path, speaker_kubeconfig: Path
) -> None:
    async with _cluster(kube, kubeconfig, speaker_kubeconfig, 60) as speakers:
        await wait_for(lambda: len(_all_addresses(emu)) == 60, 20, "all allocated")
        await wait_for(lambda: _exactly_one_each(emu, speakers), 10, "one announcer each")
        spread = {n: len(s.announcer.announced()) for n, s in zip(NODES, speakers, strict=True)}
        assert all(count > 5 for count in spread.values()), spread  # rendezvous spreads load
        svc = emu.get_object("v1/services", "default", "s1") or {}
        (ip,) = ingress_ips(svc)
        owner = announcers(speakers)[ip][0]

        def recorded() -> str | None:  # the owner's PATCH lands a moment after it announces
            found = emu.get_object("v1/services", "default", "s1") or {}
            return (found["metadata"].get("annotations") or {}).get(names.ANN_ANNOUNCING_NODE)

        await wait_for(lambda: recorded() == owner, 5, f"the annotation naming {owner}")
        assert await wait_for(lambda: events_for(emu, "s1", "NodeAssigned"), 5)

        victim = speakers[0]
        orphaned = set(victim.announcer.announced())
        killed = time.monotonic()
        await victim.stop(crash=True)  # like SIGKILL: no withdraw, no lease release
        survivors = speakers[1:]
        await wait_for(lambda: orphaned <= set(announcers(survivors)), 5, "takeover")
        failover = time.monotonic() - killed
        assert _exactly_one_each(emu, survivors)
        assert failover < 2.0, f"failover took {failover:.2f}s"
        print(f"L2 failover after a crash: {failover:.3f}s for {len(orphaned)} addresses")


async def test_clean_stop_hands_over_at_once(
    emu: RealApi, kube: KubeClient, kubeconfig: Path, speaker_kubeconfig: Path
) -> None:
    async with _cluster(kube, kubeconfig, speaker_kubeconfig, 12) as speakers:
        await wait_for(lambda: _exactly_one_each(emu, speakers), 10, "one announcer each")
        wanted = _all_addresses(emu)
        started = time.monotonic()
        await speakers[0].stop()
        await wait_for(lambda: _one_each(wanted, speakers[1:]), 5, "handover")
        handover = time.monotonic() - started
        assert handover < 1.0, f"a clean stop handed over in {handover:.2f}s"
        assert _exactly_one_each(emu, speakers[1:])


async def test_speaker_that_cannot_renew_goes_silent_before_takeover(
    emu: RealApi, kube: KubeClient, kubeconfig: Path, speaker_kubeconfig: Path
) -> None:
    async with _cluster(kube, kubeconfig, speaker_kubeconfig, 12) as speakers:
        await wait_for(lambda: _exactly_one_each(emu, speakers), 10, "one announcer each")
        victim = speakers[0]
        theirs = set(victim.announcer.announced())
        (renew,) = [t for t in victim._tasks if t.get_name() == "lease-renew"]
        renew.cancel()  # partitioned from the API server, still running
        silent_at = taken_at = None
        cut = time.monotonic()
        while time.monotonic() - cut < 5 and taken_at is None:
            now = time.monotonic()
            if silent_at is None and not victim.announcer.announced():
                silent_at = now
            if taken_at is None and theirs <= set(announcers(speakers[1:])):
                taken_at = now
            await asyncio.sleep(0.005)
        assert silent_at is not None and taken_at is not None
        assert silent_at < taken_at, "two nodes answered for one address"


async def test_local_traffic_policy_announces_only_from_nodes_with_endpoints(
    emu: RealApi, kube: KubeClient, kubeconfig: Path, speaker_kubeconfig: Path
) -> None:
    await make_nodes(kube, NODES)
    await create_pool(kube, "v4", addresses=["192.0.2.0/28"])
    await l2_everywhere(kube)
    async with leading_controller(kubeconfig):
        await create_service(kube, "local", externalTrafficPolicy="Local")
        ips = await wait_for(
            lambda: ingress_ips(emu.get_object("v1/services", "default", "local")), 5
        )
        await kube.create(ENDPOINTSLICES, "default", {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "local-1", "labels": {"kubernetes.io/service-name": "local"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.1.0.5"], "nodeName": "node-c",
                           "conditions": {"ready": True}}],
        })
        async with running_speakers(speaker_kubeconfig, NODES) as speakers:
            await wait_for(lambda: announcers(speakers).get(ips[0]) == ["node-c"], 5, "node-c")


