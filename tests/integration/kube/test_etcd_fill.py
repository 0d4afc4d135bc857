"""`ApiServer.etcd_put`, the benchmarks' fast fill: objects written straight into etcd as JSON
must read, list, update and delete through the real API server like objects it wrote itself
(`bench/scale.py --prefill etcd` relies on it to hold 50,000 Services)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest

from ccm.kube.client import ApiError, KubeClient
from ccm.kube.resources import NAMESPACES, SERVICES
from tests.realkube import RealCluster

NAMESPACE = "etcd-fill"


@pytest.fixture
async def kube(real_cluster: RealCluster) -> AsyncIterator[KubeClient]:
    client = await KubeClient.connect(str(real_cluster.admin_kubeconfig), qps=0)
    try:
        await client.create(NAMESPACES, None, {"metadata": {"name": NAMESPACE}})
    except ApiError as exc:
        if exc.status != 409:
            raise
    yield client
    await client.close()


async def test_objects_written_into_etcd_behave_like_the_servers_own(
        real_cluster: RealCluster, kube: KubeClient) -> None:
    template = await kube.create(SERVICES, NAMESPACE, {
        "metadata": {"name": "template"},
        "spec": {"type": "ClusterIP", "ports": [{"port": 80, "protocol": "TCP"}]}})
    template["metadata"].pop("resourceVersion")
    clones = []
    for i in range(3):
        clone = json.loads(json.dumps(template))
        clone["metadata"].update(name=f"clone-{i}", uid=str(uuid.uuid4()),
                                 labels={"filled": "etcd"})
        clones.append((f"/registry/services/specs/{NAMESPACE}/clone-{i}",
                       json.dumps(clone).encode()))
    assert await asyncio.to_thread(real_cluster.server.etcd_put, clones, 2) == 3

    async def listed() -> list[str]:
        items = (await kube.list(SERVICES, NAMESPACE, label_selector="filled=etcd"))["items"]
        return sorted(item["metadata"]["name"] for item in items)

    for _ in range(100):  # the server's watch on etcd brings them into its cache
        if await listed() == ["clone-0", "clone-1", "clone-2"]:
            break
        await asyncio.sleep(0.05)
    assert await listed() == ["clone-0", "clone-1", "clone-2"]
    got = await kube.get(SERVICES, NAMESPACE, "clone-1")
    assert int(got["metadata"]["resourceVersion"]) > 0
    assert got["spec"]["clusterIP"] == template["spec"]["clusterIP"]
    patched = await kube.patch(SERVICES, NAMESPACE, "clone-1", {
        "metadata": {"resourceVersion": got["metadata"]["resourceVersion"],
                     "annotations": {"touched": "yes"}}})
    assert patched["metadata"]["annotations"] == {"touched": "yes"}
    for i in range(3):
        await kube.delete(SERVICES, NAMESPACE, f"clone-{i}")
    await kube.delete(SERVICES, NAMESPACE, "template")
    for _ in range(100):
        if not await listed():
            break
        await asyncio.sleep(0.05)
    assert await listed() == []
