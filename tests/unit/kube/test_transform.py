"""Informer transforms: what enters the cache, on relist and on watch events alike."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ccm.kube.informer import Informer
from ccm.kube.resources import NAMESPACES, SERVICES
from ccm.kube.transform import namespace_for_cache, service_for_cache
from tests.fakekube import FakeKube


def svc(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "labels": {"a": "b"},
                         "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}


async def test_services_enter_the_cache_without_managed_fields_and_nothing_else_lost() -> None:
    kube = FakeKube()
    await kube.create(SERVICES, "default", svc("listed"))
    seen: list[dict[str, Any]] = []
    informer = Informer(kube, SERVICES, lambda k, o, n: seen.append(n or {}),
                        transform=service_for_cache)
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.synced.wait(), 5)
        await kube.create(SERVICES, "default", svc("watched"))
        async with asyncio.timeout(5):
            while "default/watched" not in informer.cache:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for key in ("default/listed", "default/watched"):
        obj = informer.cache[key]
        assert "managedFields" not in obj["metadata"]
        assert obj["spec"] == {"type": "LoadBalancer", "ports": [{"port": 80}]}
        assert obj["metadata"]["labels"] == {"a": "b"}
        assert obj["metadata"]["resourceVersion"]
    assert all("managedFields" not in o["metadata"] for o in seen)  # handlers see the same


def test_a_namespace_keeps_only_what_pool_selectors_read() -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": "shop", "uid": "u", "resourceVersion": "7",
                        "labels": {"team": "a"}, "annotations": {"big": "x" * 1000},
                        "managedFields": [{"manager": "kubectl"}]},
           "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
    assert namespace_for_cache(obj) == {
        "metadata": {"name": "shop", "uid": "u", "resourceVersion": "7", "labels": {"team": "a"}}
    }
    assert NAMESPACES.plural == "namespaces"


def test_a_service_keeps_only_the_fields_the_controller_reads() -> None:
    obj = {"metadata": {"name": "web", "namespace": "shop", "uid": "u", "resourceVersion": "9",
                        "creationTimestamp": "2026-11-30T00:00:00Z", "generateName": "w",
                        "labels": {"app": "web"}, "finalizers": ["vipam.io/finalizer"],
                        "ownerReferences": [{"name": "x"}],
                        "annotations": {"vipam.io/pool": "lan",
                                        "kubectl.kubernetes.io/last-applied-configuration": "{}"},
                        "managedFields": [{"manager": "kubectl"}]},
           "spec": {"type": "LoadBalancer", "loadBalancerClass": "vipam.io/vipam",
                    "loadBalancerIP": "192.0.2.1", "ipFamilies": ["IPv4"],
                    "ipFamilyPolicy": "SingleStack", "clusterIP": "10.0.0.1",
                    "clusterIPs": ["10.0.0.1"], "selector": {"app": "web"},
                    "sessionAffinity": "None",
                    "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                               "targetPort": 8080, "nodePort": 30080}]},
           "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ipMode": "VIP"}]},
                      "conditions": [{"type": "other", "status": "True"}]}}
    assert service_for_cache(obj) == {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u", "resourceVersion": "9",
                     "creationTimestamp": "2026-11-30T00:00:00Z", "labels": {"app": "web"},
                     "finalizers": ["vipam.io/finalizer"], "annotations": {"vipam.io/pool": "lan"}},
        "spec": {"type": "LoadBalancer", "loadBalancerClass": "vipam.io/vipam",
                 "loadBalancerIP": "192.0.2.1", "ipFamilies": ["IPv4"],
                 "ipFamilyPolicy": "SingleStack", "ports": [{"port": 80, "protocol": "TCP"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ipMode": "VIP"}]},
                   "conditions": [{"type": "other", "status": "True"}]},
    }
