"""`KubeClient.list_all` against the real server's pagination: every item once, in order,
transformed once, one request per page, and the first page's resourceVersion (where a watch
starts)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ccm.kube.client import ApiError, KubeClient
from ccm.kube.resources import NAMESPACES, SERVICES
from tests.realkube import RealCluster

NAMESPACE = "paged"
COUNT = 7


@pytest.fixture
async def kube(real_cluster: RealCluster) -> AsyncIterator[tuple[KubeClient, list[str]]]:
    requests: list[str] = []
    client = await KubeClient.connect(
        str(real_cluster.admin_kubeconfig), qps=0,
        observer=lambda verb, resource, status, seconds: requests.append(f"{verb} {resource}"))
    try:
        await client.create(NAMESPACES, None, {"metadata": {"name": NAMESPACE}})
    except ApiError as exc:
        if exc.status != 409:
            raise
    for i in range(COUNT):
        await client.create(SERVICES, NAMESPACE, {
            "metadata": {"name": f"s{i}"},
            "spec": {"type": "ClusterIP", "ports": [{"port": 80 + i, "protocol": "TCP"}]}})
    requests.clear()
    yield client, requests
    for i in range(COUNT):
        await client.delete(SERVICES, NAMESPACE, f"s{i}")
    await client.close()


async def test_every_item_once_one_request_per_page(
        kube: tuple[KubeClient, list[str]]) -> None:
    client, requests = kube
    seen: list[str] = []

    def transform(item: dict[str, object]) -> dict[str, object]:
        seen.append(item["metadata"]["name"])  # type: ignore[index]
        return {"name": item["metadata"]["name"]}  # type: ignore[index]

    listing = await client.list_all(SERVICES, NAMESPACE, page=2, transform=transform)
    names = [f"s{i}" for i in range(COUNT)]
    assert [item["name"] for item in listing["items"]] == names
    assert seen == names  # each item transformed once
    assert int(listing["metadata"]["resourceVersion"]) > 0
    assert requests == ["list services"] * 4  # pages of 2, 2, 2, 1: no fetch wasted
