"""The switch-over from MetalLB and from Cilium LB-IPAM, on a real API server.

Each test starts from Services as the old controller left them, converts the old objects with
`vipam migrate`, checks and applies the result, then starts vipam's controller (in-process, on
its own ServiceAccount, `--compat metallb` or `cilium`) and checks what the issue asks:

* every shown address is restored; what vipam adds is its finalizer, its annotation and its
  condition, nothing else (objects compared field by field) and in one update plus one status
  update per Service (requests counted from the server's apiserver_request_total);
* a new Service gets an address none of the old ones has;
* deleting an old Service releases its address in our pools (the pool's status counts it free,
  and another Service is then given exactly that address).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ccm.contract import names
from ccm.health.server import HealthServer
from ccm.kube.client import KubeClient
from ccm.kube.resources import IPPOOLS, SERVICES
from tests.integration.controller.harness import wait_for
from tests.integration.migrate.oldworld import (
    all_adopted,
    check_and_apply,
    ingress,
    migrate_files,
    old_service,
    our_condition,
    services,
    vipam_controller,
    write_yaml,
)
from tests.realkube import RealCluster

JSON = dict[str, Any]
NO_SPEC_IP = {"set_load_balancer_ip": False}  # --no-set-load-balancer-ip


# --- the worlds the old controllers left --------------------------------------------------


def metallb_sources(shop: str) -> list[JSON]:
    def obj(kind: str, name: str, spec: JSON) -> JSON:
        return {"apiVersion": "metallb.io/v1beta1", "kind": kind,
                "metadata": {"name": name, "namespace": "metallb-system"}, "spec": spec}

    return [
        obj("IPAddressPool", "lan", {"addresses": ["192.0.2.0/26", "2001:db8:10::/120"],
                                     "avoidBuggyIPs": True}),
        obj("IPAddressPool", "shop", {"addresses": ["198.51.100.0/27"],
                                      "serviceAllocation": {"priority": 1,
                                                            "namespaces": [shop]}}),
        obj("IPAddressPool", "spare", {"addresses": ["203.0.113.0/28"], "autoAssign": False}),
        obj("L2Advertisement", "lan", {"ipAddressPools": ["lan", "shop", "spare"]}),
    ]


async def metallb_world(cluster: RealCluster, kube: KubeClient) -> tuple[str, str]:
    """Six Services as MetalLB left them; returns (apps namespace, shop namespace)."""
    apps, shop = cluster.namespace("apps"), cluster.namespace("shop")
    pool = "metallb.io/ip-allocated-from-pool"  # what MetalLB writes on its Services
    await old_service(kube, apps, "web", ["192.0.2.1"], annotations={pool: "lan"})
    for proto in ("TCP", "UDP"):
        await old_service(kube, apps, f"dns-{proto.lower()}", ["192.0.2.53"], annotations={
            pool: "lan", "metallb.io/allow-shared-ip": "dns"}, ports=[(proto, 53)])
    await old_service(kube, apps, "pinned", ["192.0.2.10"], annotations={
        pool: "lan", "metallb.io/loadBalancerIPs": "192.0.2.10"})
    await old_service(kube, apps, "dual", ["192.0.2.2", "2001:db8:10::2"], dual_stack=True,
                      annotations={pool: "lan"})
    await old_service(kube, shop, "api", ["198.51.100.3"], annotations={
        pool: "shop", "metallb.io/address-pool": "shop"})
    return apps, shop


CILIUM_SOURCES: list[JSON] = [
    {"apiVersion": "cilium.io/v2alpha1", "kind": "CiliumLoadBalancerIPPool",
     "metadata": {"name": "blue"},
     "spec": {"blocks": [{"cidr": "203.0.113.0/26"}, {"cidr": "2001:db8:20::/120"}],
              "allowFirstLastIPs": "No"}},
    {"apiVersion": "cilium.io/v2alpha1", "kind": "CiliumL2AnnouncementPolicy",
     "metadata": {"name": "l2"},
     "spec": {"interfaces": ["^eth0$"], "loadBalancerIPs": True}},
]
CILIUM_SATISFIED = {  # the condition Cilium's LB-IPAM leaves on a Service it served
    "type": "io.cilium/lb-ipam-request-satisfied", "status": "True",
    "lastTransitionTime": "2026-01-01T00:00:00Z", "reason": "satisfied", "message": "",
}


async def cilium_world(cluster: RealCluster, kube: KubeClient) -> str:
    tenant = cluster.namespace("tenant")
    kw: dict[str, Any] = {"conditions": [CILIUM_SATISFIED]}
    await old_service(kube, tenant, "web", ["203.0.113.10"], **kw)
    await old_service(kube, tenant, "shared-a", ["203.0.113.20"], ports=[("TCP", 80)],
                      annotations={"lbipam.cilium.io/sharing-key": "k"}, **kw)
    await old_service(kube, tenant, "shared-b", ["203.0.113.20"], ports=[("TCP", 443)],
                      annotations={"lbipam.cilium.io/sharing-key": "k"}, **kw)
    await old_service(kube, tenant, "requested", ["203.0.113.30"],
                      annotations={"lbipam.cilium.io/ips": "203.0.113.30"}, **kw)
    await old_service(kube, tenant, "dual", ["203.0.113.11", "2001:db8:20::11"],
                      dual_stack=True, **kw)
    return tenant


# --- the switch ---------------------------------------------------------------------------


def convert_check_apply(cluster: RealCluster, tmp_path: Path, sources: list[JSON]) -> None:
    """`vipam migrate` the old objects, `vipam check` the result, apply it."""
    source = write_yaml(tmp_path / "old.yaml", sources)
    target = tmp_path / "vipam.yaml"
    code, report = migrate_files([source], target)
    assert code == 0, report
    check_and_apply(cluster, target)


def assert_only_ours_changed(before: dict[str, JSON], after: dict[str, JSON]) -> None:
    """Addresses and spec untouched; added: our finalizer, annotation and condition."""
    for key, old in before.items():
        new = after[key]
        assert new["status"]["loadBalancer"] == old["status"]["loadBalancer"], key
        assert new["spec"] == old["spec"], key
        assert new["metadata"].get("finalizers") == [names.FINALIZER], key
        old_ann, new_ann = old["metadata"].get("annotations") or {}, new["metadata"]["annotations"]
        assert {k: v for k, v in new_ann.items() if k in old_ann} == old_ann, key
        assert set(new_ann) - set(old_ann) == {names.ANN_ALLOCATED_FROM}, key
        others = [c for c in new["status"].get("conditions") or []
                  if c["type"] != names.CONDITION_ALLOCATED]
        assert others == (old["status"].get("conditions") or []), key
        assert our_condition(new)["status"] == "True", (key, our_condition(new))


def new_service(name: str, annotations: dict[str, str] | None = None) -> JSON:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]}}


def pool_allocated(kube: KubeClient, pool: str, count: int) -> Any:
    """A probe: the IPPool's status counts `count` IPv4 addresses allocated."""
    async def probe() -> bool:
        obj = await kube.get(IPPOOLS, None, pool)
        return str(((obj.get("status") or {}).get("ipv4") or {}).get("allocated")) == str(count)
    return probe


async def new_and_released(cluster: RealCluster, kube: KubeClient, namespace: str, *,
                           old: set[str], fresh_ip: str, pool: str, held: int, victim: str,
                           request: str) -> None:
    """A new Service gets `fresh_ip` (no old address); deleting `victim` frees its address in
    `pool` (from `held` to `held` - 1 counted), and a Service asking for it gets it."""
    await kube.create(SERVICES, namespace, new_service("fresh"))
    fresh = await wait_for(lambda: ingress(services(cluster).get(f"{namespace}/fresh")), 15,
                           "an address for the new Service")
    assert not set(fresh) & old
    assert fresh == [fresh_ip]
    released = ingress(services(cluster)[f"{namespace}/{victim}"])
    await wait_for(pool_allocated(kube, pool, held), 15, f"{pool} to count {held} addresses")
    await kube.delete(SERVICES, namespace, victim)
    await wait_for(lambda: f"{namespace}/{victim}" not in services(cluster), 15,
                   "the deleted Service to go (our finalizer removed)")
    await wait_for(pool_allocated(kube, pool, held - 1), 15, f"{pool} to count it free")
    await kube.create(SERVICES, namespace, new_service("again", {request: released[0]}))
    again = await wait_for(lambda: ingress(services(cluster).get(f"{namespace}/again")), 15,
                           "the released address for another Service")
    assert again == released


# --- MetalLB ------------------------------------------------------------------------------


async def test_metallb_switch_over_keeps_every_address(
    real_cluster: RealCluster, admin: KubeClient, tmp_path: Path
) -> None:
    """With the controller's defaults, as the runbook starts it."""
    apps, shop = await metallb_world(real_cluster, admin)
    convert_check_apply(real_cluster, tmp_path, metallb_sources(shop))
    before = services(real_cluster)
    async with vipam_controller(real_cluster, "metallb"):
        await all_adopted(real_cluster, sorted(before))
        after = services(real_cluster)
        for key, svc in before.items():
            assert after[key]["status"]["loadBalancer"] == svc["status"]["loadBalancer"], key
            assert our_condition(after[key])["status"] == "True", (key, our_condition(after[key]))
        assert after[f"{shop}/api"]["metadata"]["annotations"][names.ANN_ALLOCATED_FROM] == "shop"
        assert after[f"{apps}/dual"]["metadata"]["annotations"][names.ANN_ALLOCATED_FROM] == "lan"
        # lan holds .1, .2, .10 and .53 (shared); the new one gets .3 (.0 is avoided)
        await new_and_released(real_cluster, admin, apps,
                               old={ip for s in before.values() for ip in ingress(s)},
                               fresh_ip="192.0.2.3", pool="lan", held=5, victim="pinned",
                               request="metallb.io/loadBalancerIPs")


@pytest.mark.parametrize("settings", [
    pytest.param(NO_SPEC_IP, id="no-set-load-balancer-ip"),
    # adopting never writes spec.loadBalancerIP, whatever --set-load-balancer-ip says
    pytest.param({}, id="defaults"),
])
async def test_metallb_switch_over_changes_only_ours(
    real_cluster: RealCluster, admin: KubeClient, tmp_path: Path, settings: dict[str, Any]
) -> None:
    _, shop = await metallb_world(real_cluster, admin)
    convert_check_apply(real_cluster, tmp_path, metallb_sources(shop))
    before = services(real_cluster)
    async with vipam_controller(real_cluster, "metallb", **settings):
        await all_adopted(real_cluster, sorted(before))
        await asyncio.sleep(1)  # any write still coming would change what is compared
        assert_only_ours_changed(before, services(real_cluster))


async def test_metallb_switch_over_write_count(
    real_cluster: RealCluster, admin: KubeClient, tmp_path: Path
) -> None:
    _, shop = await metallb_world(real_cluster, admin)
    convert_check_apply(real_cluster, tmp_path, metallb_sources(shop))
    before = services(real_cluster)
    real_cluster.api.reset_stats()
    async with vipam_controller(real_cluster, "metallb", **NO_SPEC_IP):
        await all_adopted(real_cluster, sorted(before))
        await asyncio.sleep(2)  # let every resync that would write, write
        writes = {key: n for key, n in real_cluster.api.stats.delta().items()
                  if key[2] == "services" and key[0] not in ("GET", "LIST", "WATCH")}
    assert writes == {("PATCH", "", "services", ""): len(before),
                      ("PATCH", "", "services", "status"): len(before)}, writes


# --- Cilium -------------------------------------------------------------------------------


async def test_cilium_switch_over_keeps_every_address(
    real_cluster: RealCluster, admin: KubeClient, tmp_path: Path
) -> None:
    tenant = await cilium_world(real_cluster, admin)
    convert_check_apply(real_cluster, tmp_path, CILIUM_SOURCES)
    before = services(real_cluster)
    async with vipam_controller(real_cluster, "cilium", **NO_SPEC_IP):
        await all_adopted(real_cluster, sorted(before))
        await asyncio.sleep(1)
        assert_only_ours_changed(before, services(real_cluster))
        # blue holds .10, .11, .20 (shared) and .30; .0 is Cilium's reserved first address
        await new_and_released(real_cluster, admin, tenant,
                               old={ip for s in before.values() for ip in ingress(s)},
                               fresh_ip="203.0.113.1", pool="blue", held=5, victim="requested",
                               request="lbipam.cilium.io/ips")


# --- an address no migrated pool covers ---------------------------------------------------


async def test_an_address_no_migrated_pool_covers_is_kept_and_reported(
    real_cluster: RealCluster, admin: KubeClient, tmp_path: Path
) -> None:
    apps = real_cluster.namespace("apps")
    await old_service(admin, apps, "web", ["192.0.2.1"])
    # MetalLB's pool for 198.51.100.0/27 is not among the migrated objects
    await old_service(admin, apps, "stray", ["198.51.100.7"],
                      annotations={"metallb.io/ip-allocated-from-pool": "old"})
    convert_check_apply(real_cluster, tmp_path, metallb_sources("shop")[:1])
    before = services(real_cluster)
    stray = f"{apps}/stray"
    async with vipam_controller(real_cluster, "metallb") as controller:
        health = HealthServer(controller, "127.0.0.1", 0)
        await health.start()
        try:
            await all_adopted(real_cluster, [f"{apps}/web"])

            def conflict_events() -> list[JSON]:
                return [e for e in real_cluster.api.list_objects("events", apps)
                        if e["involvedObject"]["name"] == "stray"
                        and e["reason"] == names.REASON_CONFLICT]

            (event, *_) = await wait_for(conflict_events, 10, "an IPConflict Event on stray")
            assert "198.51.100.7" in event["message"]
            async with aiohttp.ClientSession() as session, \
                    session.get(f"{health.url}/status") as response:
                status = await response.json()
            rows = {row["service"]: row for row in status["services"]}
            assert rows[stray]["addresses"] == ["198.51.100.7"]
            assert rows[stray]["state"] == names.REASON_CONFLICT or any(
                f["service"] == stray and f["reason"] == names.REASON_CONFLICT
                for f in status["recent_failures"])
            # never moved, never claimed for a pool
            await asyncio.sleep(1)
            after = services(real_cluster)[stray]
            assert after["status"]["loadBalancer"] == before[stray]["status"]["loadBalancer"]
            assert after["spec"].get("loadBalancerIP") in (None, "198.51.100.7")
            assert (after["metadata"].get("annotations") or {}).get(
                names.ANN_ALLOCATED_FROM) != ""
            assert our_condition(after).get("status") != "True"
        finally:
            await health.stop()
