"""The controller against what only a real server does to a Service: default it (families,
family policy, traffic policies, allocateLoadBalancerNodePorts...), allocate ClusterIPs and
NodePorts, and require `ipMode` with every ingress `ip`.

The controller must keep every field the server set, write one ingress entry per family in the
order of spec.ipFamilies with `ipMode: VIP`, write a condition that follows the metav1 rules
(the server does not check Service conditions), and, once converged, write nothing more
(counted at the server).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ccm.contract import names
from ccm.kube.client import KubeClient
from devkit.emulator.validation import validate_conditions
from tests.integration.controller.harness import (
    condition,
    create_pool,
    create_service,
    ensure_namespace,
    ingress_ips,
    leading_controller,
    wait_for,
)
from tests.realkube import RealApi, RealCluster

SHAPES: dict[str, dict[str, Any]] = {
    "plain": {},
    "prefer-dual": {"policy": "PreferDualStack"},
    "require-dual-v6-first": {"policy": "RequireDualStack", "families": ["IPv6"]},
    "v6-no-node-ports": {"families": ["IPv6"], "allocateLoadBalancerNodePorts": False},
    "local": {"externalTrafficPolicy": "Local", "lb_class": names.LOAD_BALANCER_CLASS},
}
# what the server fills in or allocates; the controller must leave all of it alone
SERVER_FIELDS = ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy",
                 "internalTrafficPolicy", "externalTrafficPolicy", "sessionAffinity",
                 "allocateLoadBalancerNodePorts", "healthCheckNodePort", "ports", "type",
                 "loadBalancerClass")


@pytest.fixture
async def kube(real_cluster: RealCluster) -> AsyncIterator[KubeClient]:
    client = await KubeClient.connect(str(real_cluster.admin_kubeconfig), qps=0)
    await ensure_namespace(client, "kube-system")
    yield client
    await client.close()


async def test_controller_keeps_server_defaults_and_writes_ip_mode(
        real_cluster: RealCluster, kube: KubeClient) -> None:
    api: RealApi = real_cluster.api
    await create_pool(kube, "dual", addresses=["192.0.2.0/28", "2001:db8:5::/120"])
    created = {name: await create_service(kube, name, **shape)
               for name, shape in SHAPES.items()}
    defaulted = created["plain"]["spec"]
    assert (defaulted["ipFamilies"], defaulted["ipFamilyPolicy"],
            defaulted["internalTrafficPolicy"], defaulted["allocateLoadBalancerNodePorts"]) == (
        ["IPv4"], "SingleStack", "Cluster", True)
    assert created["local"]["spec"]["healthCheckNodePort"] > 0
    async with leading_controller(real_cluster.controller_kubeconfig):
        def served() -> dict[str, dict[str, Any]] | None:
            found = {name: api.get_object("v1/services", "default", name) or {}
                     for name in SHAPES}
            return found if all(condition(svc).get("status") == "True"
                                for svc in found.values()) else None

        services = await wait_for(served, 30, "every Service served")
        await asyncio.sleep(1.0)  # anything still to come would land now
        api.reset_stats()
        await asyncio.sleep(3.0)
        writes = api.stats.count("update", "services") + api.stats.count("patch", "services")
    assert writes == 0, f"{writes} Service writes after convergence: {api.stats}"
    for name, svc in services.items():
        before, after = created[name]["spec"], svc["spec"]
        for field in SERVER_FIELDS:
            assert after.get(field) == before.get(field), (name, field)
        ingress = svc["status"]["loadBalancer"]["ingress"]
        assert all(entry.get("ipMode") == "VIP" for entry in ingress), (name, ingress)
        families = ["IPv6" if ":" in ip else "IPv4" for ip in ingress_ips(svc)]
        assert families == after["ipFamilies"], (name, ingress)
        conditions = svc["status"]["conditions"]
        assert validate_conditions(conditions, "status.conditions") == [], (name, conditions)
