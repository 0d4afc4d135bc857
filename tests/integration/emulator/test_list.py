"""List semantics: XList kind, resourceVersion, selectors, pagination."""

from __future__ import annotations

import aiohttp
import pytest
from kubernetes_asyncio.client import ApiException, CoreV1Api, CustomObjectsApi

from devkit.emulator import Emulator
from tests.integration.emulator.conftest import Server, lb_service, reason, widget


async def labelled(core: CoreV1Api, ns: str) -> None:
    for name, labels in (("a", {"app": "web", "tier": "front"}), ("b", {"app": "web"}),
                         ("c", {"app": "db", "tier": "back"}), ("d", {})):
        await core.create_namespaced_config_map(ns, {"metadata": {
            "name": name, "labels": labels}})


@pytest.mark.parametrize(("selector", "expected"), [
    ("app=web", ["a", "b"]),
    ("app==web", ["a", "b"]),
    ("app!=web", ["c", "d"]),
    ("app in (db, web),tier", ["a", "c"]),
    ("app notin (web)", ["c", "d"]),
    ("tier", ["a", "c"]),
    ("!tier", ["b", "d"]),
    ("app=web,!tier", ["b"]),
])
async def test_label_selectors(ns: str, core: CoreV1Api, selector: str,
                               expected: list[str]) -> None:
    await labelled(core, ns)
    found = await core.list_namespaced_config_map(ns, label_selector=selector)
    assert [i.metadata.name for i in found.items] == expected


async def test_field_selectors(ns: str, server: Server, core: CoreV1Api) -> None:
    two = server.unique("two")
    await core.create_namespace({"metadata": {"name": two}})
    await core.create_namespaced_service(ns, lb_service("lb"))
    await core.create_namespaced_service(ns, lb_service("plain", type="ClusterIP"))
    await core.create_namespaced_service(two, lb_service("lb"))
    by_type = await core.list_service_for_all_namespaces(field_selector="spec.type=LoadBalancer")
    assert sorted((s.metadata.namespace, s.metadata.name) for s in by_type.items) == sorted([
        (ns, "lb"), (two, "lb")])
    by_ns = await core.list_service_for_all_namespaces(
        field_selector=f"metadata.namespace={two},metadata.name=lb")
    assert [s.metadata.namespace for s in by_ns.items] == [two]
    not_lb = await core.list_namespaced_service(ns, field_selector="spec.type!=LoadBalancer")
    assert [s.metadata.name for s in not_lb.items] == ["plain"]
    with pytest.raises(ApiException) as caught:
        await core.list_namespaced_service(ns, field_selector="spec.bogus=x")
    assert caught.value.status == 400 and reason(caught.value) == "BadRequest"


async def test_list_kind_and_version(ns: str, server: Server, core: CoreV1Api) -> None:
    created = await core.create_namespaced_config_map(ns, {"metadata": {"name": "x"}})
    async with server.session() as session, session.get(
            server.url + f"/api/v1/namespaces/{ns}/configmaps") as response:
        body = await response.json()
    assert body["kind"] == "ConfigMapList" and body["apiVersion"] == "v1"
    # the list is at least as new as the write before it (a consistent read)
    assert int(body["metadata"]["resourceVersion"]) >= int(created.metadata.resource_version)


async def test_limit_and_continue_page_through_everything(ns: str, core: CoreV1Api) -> None:
    names = [f"p{i:02d}" for i in range(7)]
    for name in names:
        await core.create_namespaced_config_map(ns, {"metadata": {"name": name}})
    pages: list[list[str]] = []
    token = None
    first_rv = None
    while True:
        page = await core.list_namespaced_config_map(ns, limit=3, _continue=token)
        pages.append([i.metadata.name for i in page.items])
        first_rv = first_rv or page.metadata.resource_version
        assert page.metadata.resource_version == first_rv  # one snapshot version per listing
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 7 - sum(len(p) for p in pages)
    assert pages == [names[0:3], names[3:6], names[6:7]]


async def test_expired_continue_token_is_410(emulator: Emulator,
                                             emulator_core: CoreV1Api) -> None:
    """Emulator only: expiring history on cue is a fault knob; a real server expires continue
    tokens when etcd compacts (every 5 minutes), which a test cannot wait for."""
    core = emulator_core
    for i in range(3):
        await core.create_namespaced_config_map("default", {"metadata": {"name": f"t{i}"}})
    page = await core.list_namespaced_config_map("default", limit=1)
    await core.create_namespaced_config_map("default", {"metadata": {"name": "t9"}})
    emulator.faults.expire_history()
    with pytest.raises(ApiException) as caught:
        await core.list_namespaced_config_map("default", limit=1,
                                              _continue=page.metadata._continue)
    assert caught.value.status == 410 and reason(caught.value) == "Expired"


async def test_custom_resource_list(ns: str, custom: CustomObjectsApi) -> None:
    args = ("example.test", "v1", ns, "widgets")
    await custom.create_namespaced_custom_object(*args, widget("w1"))
    found = await custom.list_namespaced_custom_object(*args)
    assert found["kind"] == "WidgetList" and found["apiVersion"] == "example.test/v1"
    assert [i["metadata"]["name"] for i in found["items"]] == ["w1"]
    everywhere = await custom.list_cluster_custom_object("example.test", "v1", "widgets")
    assert len(everywhere["items"]) == 1


async def test_list_at_an_exact_expired_version_is_410(emulator: Emulator) -> None:
    """resourceVersionMatch=Exact needs history; a plain resourceVersion (NotOlderThan) is
    served from the current state, as by the apiserver's cache. Emulator only: it expires
    history on cue."""
    url = emulator.url + "/api/v1/namespaces"
    old = str(emulator.store.rv)
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json={"metadata": {"name": "later"}}) as created:
            assert created.status == 201
        emulator.faults.expire_history()
        async with session.get(url, params={"resourceVersion": old,
                                            "resourceVersionMatch": "Exact"}) as response:
            assert response.status == 410 and (await response.json())["reason"] == "Expired"
        async with session.get(url, params={"resourceVersion": old}) as response:
            body = await response.json()
            assert response.status == 200
            assert "later" in [n["metadata"]["name"] for n in body["items"]]
