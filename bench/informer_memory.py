"""Benchmark: bytes the controller's Service cache holds per Service, load-independent.

Builds N Services shaped as a real kube-apiserver 1.36 returns them once allocated (managedFields
of the creating client, of the controller's update and of its status update; clusterIPs; ports
with nodePorts; status with ingress and condition), feeds them through an Informer's relist with
and without the controller's transform, and measures the cache with tracemalloc (every
allocation made while filling it, freed copies excluded). Prints JSON and a table.

    .venv/bin/python -m bench.informer_memory [--services 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ccm.kube.informer import Informer, Transform
from ccm.kube.packed import PackedCache
from ccm.kube.resources import SERVICES
from ccm.kube.transform import drop_managed_fields, service_for_cache


def _fields(prefix: str, keys: list[str]) -> dict[str, Any]:
    return {f"f:{prefix}{k}": {} for k in keys}


CONDITION_KEY = 'k:{"type":"vipam.io/IPAllocated"}'


def service(index: int) -> dict[str, Any]:
    name = f"svc-{index:05d}"
    ip = f"2001:db8:b::{index:x}"
    time = "2026-11-30T18:00:00Z"
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "name": name, "namespace": "bench", "uid": f"0b7c2c7e-6a4f-4f7e-9d1a-{index:012d}",
            "resourceVersion": str(100000 + index), "creationTimestamp": time,
            "finalizers": ["vipam.io/finalizer"],
            "annotations": {"vipam.io/allocated-from": "bench"},
            "labels": {"app": name},
            "managedFields": [
                {"manager": "python-aiohttp", "operation": "Update", "apiVersion": "v1",
                 "time": time, "fieldsType": "FieldsV1", "fieldsV1": {
                     "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                     "f:spec": _fields("", ["allocateLoadBalancerNodePorts",
                                            "externalTrafficPolicy", "internalTrafficPolicy",
                                            "ipFamilies", "ipFamilyPolicy", "ports",
                                            "sessionAffinity", "type"])}},
                {"manager": "vipam-controller", "operation": "Update", "apiVersion": "v1",
                 "time": time, "fieldsType": "FieldsV1", "fieldsV1": {
                     "f:metadata": {"f:annotations": {".": {}, "f:vipam.io/allocated-from": {}},
                                    "f:finalizers": {".": {}, "v:\"vipam.io/finalizer\"": {}}},
                     "f:spec": {"f:loadBalancerIP": {}}}},
                {"manager": "vipam-controller", "operation": "Update", "apiVersion": "v1",
                 "time": time, "fieldsType": "FieldsV1", "subresource": "status",
                 "fieldsV1": {"f:status": {"f:conditions": {".": {}, CONDITION_KEY: {
                     ".": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:reason": {},
                     "f:status": {}, "f:type": {}}}, "f:loadBalancer": {"f:ingress": {}}}}},
            ],
        },
        "spec": {
            "ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}],
            "clusterIP": f"fd00:10:96::{index:x}", "clusterIPs": [f"fd00:10:96::{index:x}"],
            "type": "LoadBalancer", "sessionAffinity": "None", "loadBalancerIP": ip,
            "externalTrafficPolicy": "Cluster", "ipFamilies": ["IPv6"],
            "ipFamilyPolicy": "SingleStack", "allocateLoadBalancerNodePorts": False,
            "internalTrafficPolicy": "Cluster",
        },
        "status": {
            "loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]},
            "conditions": [{"type": "vipam.io/IPAllocated", "status": "True",
                            "lastTransitionTime": time, "reason": "IPAllocated",
                            "message": f"allocated {ip} from pool bench"}],
        },
    }


class _Listing:
    """Just enough of KubeApi for a relist: pages of 500 decoded as KubeClient.list_all does,
    so the relist peak is the one the controller sees."""

    observer = None

    def __init__(self, pages: list[bytes]) -> None:
        self.pages = pages

    async def list_all(self, res: Any, namespace: str | None = None, page: int = 500,
                       transform: Transform | None = None) -> Any:
        items: list[Any] = []
        for raw in self.pages:
            decoded = json.loads(raw)["items"]
            items.extend(transform(i) for i in decoded) if transform else items.extend(decoded)
        return {"metadata": {"resourceVersion": "1"}, "items": items}


async def measure(count: int, transform: Transform | None, packed: bool = False
                  ) -> dict[str, Any]:
    pages = [
        json.dumps({"items": [service(i) for i in range(start, min(count, start + 500))]}).encode()
        for start in range(0, count, 500)
    ]
    client = _Listing(pages)
    informer = Informer(client, SERVICES, transform=transform,  # type: ignore[arg-type]
                        cache=PackedCache() if packed else None)
    tracemalloc.start()
    await informer.relist()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    json_bytes = len(json.dumps(next(iter(informer.cache.values()))))
    name = transform.__name__ if transform else None
    return {"services": count, "transform": f"{name} packed" if packed else name,
            "cache_bytes": current, "bytes_per_service": round(current / count),
            "relist_peak_bytes_per_service": round(peak / count),
            "json_bytes_per_service": json_bytes}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=10000)
    args = parser.parse_args()
    rows = [asyncio.run(measure(args.services, t))
            for t in (None, drop_managed_fields, service_for_cache)]
    rows.append(asyncio.run(measure(args.services, service_for_cache, packed=True)))
    print(json.dumps(rows))
    print(f"{'transform':<26}{'services':>10}{'cache bytes':>14}{'B/Service':>11}"
          f"{'peak B/Svc':>12}{'JSON B':>8}")
    for r in rows:
        print(f"{r['transform'] or 'none':<26}{r['services']:>10}{r['cache_bytes']:>14}"
              f"{r['bytes_per_service']:>11}{r['relist_peak_bytes_per_service']:>12}"
              f"{r['json_bytes_per_service']:>8}")


if __name__ == "__main__":
    main()
