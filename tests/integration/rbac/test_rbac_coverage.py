"""RBAC covers every API call the code makes, and nothing more.

The controller and the speaker run real scenarios against a real kube-apiserver, each on its
own ServiceAccount token from config/rbac. The server's audit log records every request each
identity made (verb, API group, resource, namespace, response code), and each becomes an RBAC
grant (scope, API group, resource, verb). The set must equal what
config/rbac/permissions.yaml grants the identity (and the rendered Roles equal that file:
tests/unit/manifests). A call outside the grants is refused by the server (a 403, which
fails the test at teardown as well); a grant no call uses is privilege the code does not need.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import time
from pathlib import Path
from typing import Any

from ccm.contract import names
from ccm.controller.manager import Controller
from ccm.kube.client import ApiError, KubeClient
from ccm.kube.resources import (
    BGPADVERTISEMENTS,
    BGPPEERS,
    L2ADVERTISEMENTS,
    NODES,
    SECRETS,
    SERVICES,
)
from ccm.speaker.process import Speaker
from ccm.speaker.settings import SpeakerSettings
from devkit.reference_ipam import ReferenceServer
from tests.integration.controller.harness import (
    addresses_of,
    create_pool,
    create_service,
    events_for,
    fast_settings,
    get_service,
    leader_ready,
    wait_for,
)
from tests.prereq import require
from tests.realkube import RealApi, RealCluster
from tests.unit.manifests.rbac import listed_grants

Grant = tuple[str, str, str, str]  # scope, API group, resource, verb
CONTROLLER = "vipam-controller"
SPEAKER = "vipam-speaker"
OWN_NAMESPACE = "kube-system"


def observed(cluster: RealCluster, account: str) -> set[Grant]:
    """The grants `account`'s requests used, from the server's audit log of this test. A
    request in the own namespace counts against the namespace-scoped grant (a Role) when
    there is one; everything else against the cluster-scoped ones."""
    user = f"system:serviceaccount:{OWN_NAMESPACE}:{account}"
    roles = {(g[1], g[2], g[3]) for g in granted(account) if g[0] == "namespace"}
    grants: set[Grant] = set()
    for event in cluster.audit_events():
        ref: dict[str, Any] = event.get("objectRef") or {}
        if event.get("user", {}).get("username") != user or not ref.get("resource"):
            continue
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        group, verb = ref.get("apiGroup", ""), event["verb"]
        in_role = ref.get("namespace") == OWN_NAMESPACE and (group, resource, verb) in roles
        grants.add(("namespace" if in_role else "cluster", group, resource, verb))
    return grants


def conflicts(cluster: RealCluster, account: str) -> int:
    """Writes of `account` the server refused with 409 Conflict during this test."""
    user = f"system:serviceaccount:{OWN_NAMESPACE}:{account}"
    return sum(1 for event in cluster.audit_events()
               if event.get("user", {}).get("username") == user
               and event.get("verb") in ("update", "patch")
               and event.get("responseStatus", {}).get("code") == 409)


def granted(account: str) -> set[Grant]:
    return {
        (g.scope, g.api_group, g.resource, g.verb)
        for g in listed_grants() if g.service_account == account
    }


async def _secret(kube: KubeClient, name: str, key: str, value: str) -> None:
    await kube.create(SECRETS, OWN_NAMESPACE, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "data": {key: base64.b64encode(value.encode()).decode()},
    })


async def race_until_a_conflict(cluster: RealCluster, kube: KubeClient,
                                seconds: float = 60.0) -> str:
    """Make the server refuse a controller write with a real 409: create Services and edit
    each one as fast as we can while the controller writes it, until the audit log shows a
    409 answered to the controller (at most `seconds`). Returns the Service raced."""
    before = conflicts(cluster, CONTROLLER)
    deadline = time.monotonic() + seconds
    attempt = 0
    while time.monotonic() < deadline:
        name = f"raced-{attempt}"
        attempt += 1
        await create_service(kube, name)
        edit, until = 0, time.monotonic() + 3.0
        while time.monotonic() < until:
            edit += 1
            try:
                await kube.patch(SERVICES, "default", name,
                                 {"metadata": {"labels": {"edit": str(edit)}}})
            except ApiError as exc:  # the controller's write won the race: fine, again
                if not exc.conflict:
                    raise
            if edit % 5 == 0 and conflicts(cluster, CONTROLLER) > before:
                return name
            await asyncio.sleep(0)
        if conflicts(cluster, CONTROLLER) > before:
            return name
    raise AssertionError(f"no 409 for the controller after {attempt} raced Services")


async def controller_scenario(cluster: RealCluster, emu: RealApi, kube: KubeClient,
                              kubeconfig: Path) -> set[Grant]:
    ipam = ReferenceServer({"lab": ["198.51.100.0/29"]}, token="t0ken")
    await ipam.start()
    await _secret(kube, "ipam-token", "token", "t0ken")
    await create_pool(kube, "p", addresses=["192.0.2.0/28"])
    await create_pool(kube, "ext", autoAssign=False, external={
        "provider": "http", "url": ipam.url, "secretRef": {"name": "ipam-token"},
        "options": {"pool": "lab"}})
    controller = Controller(fast_settings(kubeconfig))
    await controller.start()
    try:
        await leader_ready(controller)
        await create_service(kube, "plain")
        await create_service(kube, "external", annotations={names.ANN_POOL: "ext"})
        await addresses_of(emu, "default", "plain")
        await addresses_of(emu, "default", "external")
        # the same Event twice (moved away and back): the recorder patches its count
        await create_service(kube, "mover", annotations={names.ANN_IPS: "192.0.2.5"})
        await addresses_of(emu, "default", "mover")
        # written before the repeat (one still held back while the controller is busy would
        # take the repeat into its own POST: no PATCH)
        await wait_for(lambda: events_for(emu, "mover", names.REASON_ALLOCATED), 15,
                       "the first Event written")
        for ip in ("192.0.2.6", "192.0.2.5"):
            svc = await kube.get(SERVICES, "default", "mover")
            svc["metadata"]["annotations"][names.ANN_IPS] = ip
            await kube.replace(SERVICES, "default", "mover", svc)
            await wait_for(lambda ip=ip: (get_service(emu, "default", "mover") or {}).get(
                "status", {}).get("loadBalancer", {}).get("ingress") == [
                {"ip": ip, "ipMode": "VIP"}], 10, f"mover at {ip}")
        await wait_for(lambda: any(e.get("count", 1) > 1
                                   for e in events_for(emu, "mover", names.REASON_ALLOCATED)),
                       10, "an aggregated Event")
        # a write that loses a real race (409): the controller re-reads with a GET
        raced = await race_until_a_conflict(cluster, kube)
        await addresses_of(emu, "default", raced)
        await wait_for(lambda: ("cluster", "", "services", "get")
                       in observed(cluster, CONTROLLER), 10, "a re-read after a conflict")
        await kube.delete(SERVICES, "default", "plain")
        await wait_for(lambda: get_service(emu, "default", "plain") is None, 10)
        await wait_for(lambda: ("cluster", "vipam.io", "ippools/status", "update")
                       in observed(cluster, CONTROLLER), 10, "pool status")
    finally:
        await controller.stop()
        await ipam.stop()
    return observed(cluster, CONTROLLER)


async def speaker_scenario(cluster: RealCluster, emu: RealApi, kube: KubeClient,
                           kubeconfig: Path, workdir: Path) -> set[Grant]:
    await kube.create(NODES, None, {"metadata": {"name": "n1"}})
    await _secret(kube, "bgp-auth", "password", "secret")
    for res, name, spec in (
        (L2ADVERTISEMENTS, "l2", {}),
        (BGPPEERS, "router", {"address": "127.0.0.2", "asn": 64512, "localASN": 64512,
                              "passwordSecretRef": {"name": "bgp-auth", "key": "password"}}),
        (BGPADVERTISEMENTS, "bgp", {"communities": ["64512:1"]}),
    ):
        await kube.create(res, None, {"apiVersion": "vipam.io/v1alpha1", "kind": res.kind,
                                      "metadata": {"name": name}, "spec": spec})
    speaker = Speaker(SpeakerSettings(
        node_name="n1", kubeconfig=str(kubeconfig), namespace=OWN_NAMESPACE, announcer="log",
        bgp=True, bgp_router_id="127.0.0.1", bgp_workdir=str(workdir), health_port=0,
        log_format="text",
    ))
    await speaker.start()
    try:
        def announcing() -> str | None:
            svc = get_service(emu, "default", "external") or {}
            return (svc.get("metadata", {}).get("annotations") or {}).get(
                names.ANN_ANNOUNCING_NODE)

        await wait_for(announcing, 15, "the speaker records itself")
        # someone overwrites the annotation: the speaker puts it back, and its NodeAssigned
        # Event is the same as before, so the recorder patches the count
        svc = await kube.get(SERVICES, "default", "external")
        svc["metadata"]["annotations"][names.ANN_ANNOUNCING_NODE] = "someone-else"
        await kube.replace(SERVICES, "default", "external", svc)
        await wait_for(lambda: announcing() == "n1", 10, "annotation restored")
        await wait_for(lambda: ("cluster", "", "events", "patch") in observed(cluster, SPEAKER),
                       10, "an aggregated NodeAssigned Event")
        await wait_for(lambda: ("namespace", "", "secrets", "get")
                       in observed(cluster, SPEAKER), 20, "the BGP password read")
    finally:
        await speaker.stop()
    return observed(cluster, SPEAKER)


async def test_rbac_covers_every_call_and_nothing_more(
    real_cluster: RealCluster, emu: RealApi, kube: KubeClient, kubeconfig: Path,
    speaker_kubeconfig: Path, tmp_path: Path
) -> None:
    require(os.geteuid() == 0 and shutil.which("bird") is not None,
            "the speaker's BGP path runs ExaBGP, which drops from root to nobody")
    controller_calls = await controller_scenario(real_cluster, emu, kube, kubeconfig)
    speaker_calls = await speaker_scenario(real_cluster, emu, kube, speaker_kubeconfig,
                                           tmp_path / "exabgp")
    assert controller_calls - granted(CONTROLLER) == set(), "calls RBAC would refuse"
    assert granted(CONTROLLER) - controller_calls == set(), "grants no call uses"
    assert speaker_calls - granted(SPEAKER) == set(), "calls RBAC would refuse"
    assert granted(SPEAKER) - speaker_calls == set(), "grants no call uses"
