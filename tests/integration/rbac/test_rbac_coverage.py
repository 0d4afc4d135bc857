"""RBAC covers every API call the code makes, and nothing more.

The controller and the speaker run real scenarios against the emulator through clients that
record each request as an RBAC grant (scope, API group, resource, verb). The recorded set must
equal what config/rbac/permissions.yaml grants each identity (and the rendered Roles equal that
file: tests/unit/manifests). A call outside the grants would be refused on a real cluster; a
grant no call uses is privilege the code does not need.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

from ccm.contract import names
from ccm.controller.manager import Controller
from ccm.kube.client import KubeClient
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
from devkit.emulator import Emulator
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
from tests.unit.manifests.rbac import listed_grants

Grant = tuple[str, str, str, str]  # scope, API group, resource, verb
NAMESPACED_IN_OWN_NAMESPACE = {"leases", "secrets"}  # Roles in kube-system, not ClusterRoles


class Recorder:
    def __init__(self) -> None:
        self.grants: set[Grant] = set()

    def __call__(self, verb: str, resource: str, status: int, seconds: float) -> None:
        base, _, sub = resource.partition("/")
        plural, _, group = base.partition(".")
        scope = "namespace" if plural in NAMESPACED_IN_OWN_NAMESPACE else "cluster"
        self.grants.add((scope, group, f"{plural}/{sub}" if sub else plural, verb))


def granted(account: str) -> set[Grant]:
    return {
        (g.scope, g.api_group, g.resource, g.verb)
        for g in listed_grants() if g.service_account == account
    }


async def _secret(kube: KubeClient, name: str, key: str, value: str) -> None:
    await kube.create(SECRETS, "kube-system", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "data": {key: base64.b64encode(value.encode()).decode()},
    })


async def controller_scenario(emu: Emulator, kube: KubeClient, kubeconfig: Path) -> set[Grant]:
    ipam = ReferenceServer({"lab": ["198.51.100.0/29"]}, token="t0ken")
    await ipam.start()
    await _secret(kube, "ipam-token", "token", "t0ken")
    await create_pool(kube, "p", addresses=["192.0.2.0/29"])
    await create_pool(kube, "ext", autoAssign=False, external={
        "provider": "http", "url": ipam.url, "secretRef": {"name": "ipam-token"},
        "options": {"pool": "lab"}})
    recorder = Recorder()
    client = await KubeClient.connect(str(kubeconfig), qps=0, observer=recorder)
    controller = Controller(fast_settings(kubeconfig), client)
    await controller.start()
    try:
        await leader_ready(controller)
        await create_service(kube, "plain")
        await create_service(kube, "external", annotations={names.ANN_POOL: "ext"})
        await addresses_of(emu, "default", "plain")
        await addresses_of(emu, "default", "external")
        # the same Event twice (moved away and back): the recorder patches its count
        await create_service(kube, "mover", annotations={names.ANN_IPS: "192.0.2.5"})
        for ip in ("192.0.2.6", "192.0.2.5"):
            await addresses_of(emu, "default", "mover")
            svc = await kube.get(SERVICES, "default", "mover")
            svc["metadata"]["annotations"][names.ANN_IPS] = ip
            await kube.replace(SERVICES, "default", "mover", svc)
            await wait_for(lambda ip=ip: (get_service(emu, "default", "mover") or {}).get(
                "status", {}).get("loadBalancer", {}).get("ingress") == [
                {"ip": ip, "ipMode": "VIP"}], 10, f"mover at {ip}")
        await wait_for(lambda: any(e.get("count", 1) > 1
                                   for e in events_for(emu, "mover", names.REASON_ALLOCATED)),
                       10, "an aggregated Event")
        # a write that loses a race (409): the controller re-reads with a GET
        emu.faults.fail_next(1, 409, methods={"PUT"}, path_contains="/services/raced")
        await create_service(kube, "raced")
        await addresses_of(emu, "default", "raced")
        await wait_for(lambda: ("cluster", "", "services", "get") in recorder.grants, 10,
                       "a re-read after a conflict")
        await kube.delete(SERVICES, "default", "plain")
        await wait_for(lambda: get_service(emu, "default", "plain") is None, 10)
        await wait_for(lambda: ("cluster", "vipam.io", "ippools/status", "update")
                       in recorder.grants, 10, "pool status")
    finally:
        await controller.stop()
        await ipam.stop()
    return recorder.grants


async def speaker_scenario(emu: Emulator, kube: KubeClient, kubeconfig: Path,
                           workdir: Path) -> set[Grant]:
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
    recorder = Recorder()
    client = await KubeClient.connect(str(kubeconfig), qps=0, observer=recorder)
    speaker = Speaker(SpeakerSettings(
        node_name="n1", kubeconfig=str(kubeconfig), namespace="kube-system", announcer="log",
        bgp=True, bgp_router_id="127.0.0.1", bgp_workdir=str(workdir), health_port=0,
        log_format="text",
    ), client)
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
        await wait_for(lambda: ("cluster", "", "events", "patch") in recorder.grants, 10,
                       "an aggregated NodeAssigned Event")
        await wait_for(lambda: ("namespace", "", "secrets", "get") in recorder.grants, 20,
                       "the BGP password read")
    finally:
        await speaker.stop()
    return recorder.grants


async def test_rbac_covers_every_call_and_nothing_more(
    emu: Emulator, kube: KubeClient, kubeconfig: Path, tmp_path: Path
) -> None:
    require(os.geteuid() == 0 and shutil.which("bird") is not None,
            "the speaker's BGP path runs ExaBGP, which drops from root to nobody")
    controller_calls = await controller_scenario(emu, kube, kubeconfig)
    speaker_calls = await speaker_scenario(emu, kube, kubeconfig, tmp_path / "exabgp")
    assert controller_calls - granted("vipam-controller") == set(), "calls RBAC would refuse"
    assert granted("vipam-controller") - controller_calls == set(), "grants no call uses"
    assert speaker_calls - granted("vipam-speaker") == set(), "calls RBAC would refuse"
    assert granted("vipam-speaker") - speaker_calls == set(), "grants no call uses"
