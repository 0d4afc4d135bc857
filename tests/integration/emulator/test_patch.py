"""PATCH flavours as the apiserver applies them, including strategic-merge list keys."""

from __future__ import annotations

import pytest
from kubernetes_asyncio.client import ApiException, CoordinationV1Api, CoreV1Api, CustomObjectsApi

from tests.integration.emulator.conftest import Server, lb_service, reason, widget

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


def widgets(ns: str) -> tuple[str, str, str, str]:
    return ("example.test", "v1", ns, "widgets")


async def test_merge_patch_replaces_lists_and_null_deletes(ns: str, core: CoreV1Api) -> None:
    body = lb_service("m", ports=[{"name": "a", "port": 80}, {"name": "b", "port": 443}])
    body["metadata"]["labels"] = {"keep": "1", "drop": "1"}  # type: ignore[index]
    await core.create_namespaced_service(ns, body)
    patched = await core.patch_namespaced_service(
        "m", ns,
        {"metadata": {"labels": {"drop": None, "new": "2"}},
         "spec": {"ports": [{"name": "c", "port": 8080}]}},
        _content_type=MERGE)
    assert patched.metadata.labels == {"keep": "1", "new": "2"}
    assert [p.port for p in patched.spec.ports] == [8080]  # merge patch replaces lists


async def test_strategic_merge_ports_by_port(server: Server, core: CoreV1Api) -> None:
    """Upstream's strategic merge keys Service ports by port alone, so a patch for 53/TCP
    lands on 53/UDP and the UDP port is gone. The emulator differs on purpose: it keys them by
    (port, protocol), as server-side apply does, and never merges two protocols into one."""
    ns = server.ns
    body = lb_service("s", ports=[{"name": "dns", "port": 53, "protocol": "UDP"},
                                  {"name": "http", "port": 80}])
    await core.create_namespaced_service(ns, body)
    patched = await core.patch_namespaced_service("s", ns, {"spec": {"ports": [
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},   # same port, other protocol
        {"name": "web", "port": 80},                          # merges into 80/TCP by key
    ]}})
    ports = {(p.port, p.protocol): p.name for p in patched.spec.ports}
    if server.real:
        assert ports == {(53, "TCP"): "dns-tcp", (80, "TCP"): "web"}
    else:
        assert ports == {(53, "UDP"): "dns", (80, "TCP"): "web", (53, "TCP"): "dns-tcp"}


async def test_strategic_merge_keeps_upstream_order(ns: str, core: CoreV1Api) -> None:
    """Merged lists come out as upstream orders them: the patch's items in its order, the
    original's others where the original puts them (apimachinery's mergeSortedSlice)."""
    body = lb_service("o", ports=[{"name": "a", "port": 80}, {"name": "b", "port": 443},
                                  {"name": "d", "port": 53}])
    await core.create_namespaced_service(ns, body)
    patched = await core.patch_namespaced_service("o", ns, {"spec": {"ports": [
        {"name": "dd", "port": 53}, {"name": "c", "port": 8080}, {"name": "aa", "port": 80}]}})
    assert [(p.name, p.port) for p in patched.spec.ports] == [
        ("b", 443), ("dd", 53), ("c", 8080), ("aa", 80)]
    ordered = await core.patch_namespaced_service("o", ns, {"spec": {
        "$setElementOrder/ports": [{"port": 80}, {"port": 8080}, {"port": 53}, {"port": 443}],
        "ports": [{"name": "bb", "port": 443}]}})
    assert [(p.name, p.port) for p in ordered.spec.ports] == [
        ("aa", 80), ("c", 8080), ("dd", 53), ("bb", 443)]


async def test_strategic_merge_delete_directive(ns: str, core: CoreV1Api) -> None:
    body = lb_service("d", ports=[{"name": "a", "port": 80}, {"name": "b", "port": 443}])
    await core.create_namespaced_service(ns, body)
    patched = await core.patch_namespaced_service("d", ns, {"spec": {"ports": [
        {"port": 443, "$patch": "delete"}]}})
    assert [p.port for p in patched.spec.ports] == [80]


async def test_strategic_merge_finalizers_are_a_set(ns: str, core: CoreV1Api) -> None:
    body = lb_service("f")
    body["metadata"]["finalizers"] = ["a.example/one"]  # type: ignore[index]
    await core.create_namespaced_service(ns, body)
    patched = await core.patch_namespaced_service("f", ns, {"metadata": {"finalizers": [
        "service.kubernetes.io/load-balancer-cleanup", "a.example/one"]}})
    assert patched.metadata.finalizers == ["service.kubernetes.io/load-balancer-cleanup",
                                           "a.example/one"]  # the patch's order
    removed = await core.patch_namespaced_service("f", ns, {"metadata": {
        "$deleteFromPrimitiveList/finalizers": ["a.example/one"]}})
    assert removed.metadata.finalizers == ["service.kubernetes.io/load-balancer-cleanup"]


async def test_strategic_merge_conditions_by_type(ns: str, core: CoreV1Api) -> None:
    await core.create_namespaced_service(ns, lb_service("c"))
    condition = {"type": "vipam.io/IPAllocated", "status": "False", "reason": "Pending",
                 "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    await core.patch_namespaced_service_status("c", ns, {"status": {
        "conditions": [condition, {**condition, "type": "Other"}]}})
    patched = await core.patch_namespaced_service_status("c", ns, {"status": {
        "conditions": [{**condition, "status": "True", "reason": "Allocated"}]}})
    by_type = {c.type: (c.status, c.reason) for c in patched.status.conditions}
    assert by_type == {"vipam.io/IPAllocated": ("True", "Allocated"),
                       "Other": ("False", "Pending")}


async def test_strategic_merge_replaces_ingress_whole(ns: str, core: CoreV1Api) -> None:
    """Upstream declares status.loadBalancer.ingress atomic: a patch carries the full list.
    A controller that patched only the new address would leave the old one on a merge-by-ip
    fake, but on a real cluster it would drop the other family's address."""
    await core.create_namespaced_service(ns, lb_service("i"))
    await core.patch_namespaced_service_status("i", ns, {"status": {"loadBalancer": {
        "ingress": [{"ip": "192.0.2.1"}, {"ip": "2001:db8::1"}]}}})
    patched = await core.patch_namespaced_service_status("i", ns, {"status": {
        "loadBalancer": {"ingress": [{"ip": "192.0.2.2", "ipMode": "VIP"}]}}})
    ingress = [(i.ip, i.ip_mode) for i in patched.status.load_balancer.ingress]
    assert ingress == [("192.0.2.2", "VIP")]


async def test_strategic_merge_replace_directive(ns: str, core: CoreV1Api) -> None:
    """`$patch: replace` in a merged list (ports) replaces it. In an atomic list (ingress)
    directives mean nothing: the list is replaced whole anyway."""
    body = lb_service("r", ports=[{"name": "a", "port": 80}, {"name": "b", "port": 443}])
    await core.create_namespaced_service(ns, body)
    patched = await core.patch_namespaced_service("r", ns, {"spec": {"ports": [
        {"$patch": "replace"}, {"name": "c", "port": 8080}]}})
    assert [(p.name, p.port) for p in patched.spec.ports] == [("c", 8080)]


async def test_json_patch_with_test_operation(ns: str, core: CoreV1Api) -> None:
    svc = await core.create_namespaced_service(ns, lb_service("j"))
    ops = [{"op": "test", "path": "/metadata/resourceVersion",
            "value": svc.metadata.resource_version},
           {"op": "add", "path": "/metadata/annotations", "value": {"vipam.io/pool": "p1"}}]
    patched = await core.patch_namespaced_service("j", ns, ops)
    assert patched.metadata.annotations == {"vipam.io/pool": "p1"}
    with pytest.raises(ApiException) as caught:  # same test op, now stale
        await core.patch_namespaced_service("j", ns, ops)
    assert caught.value.status == 422 and reason(caught.value) == "Invalid"


async def test_json_patch_remove_missing_path_is_invalid(ns: str, core: CoreV1Api) -> None:
    await core.create_namespaced_service(ns, lb_service("j2"))
    with pytest.raises(ApiException) as caught:
        await core.patch_namespaced_service(
            "j2", ns, [{"op": "remove", "path": "/metadata/labels/none"}])
    assert caught.value.status == 422


async def test_patch_with_stale_resource_version_conflicts(ns: str, core: CoreV1Api) -> None:
    svc = await core.create_namespaced_service(ns, lb_service("p"))
    await core.patch_namespaced_service("p", ns, {"metadata": {"labels": {"a": "1"}}})
    with pytest.raises(ApiException) as caught:
        await core.patch_namespaced_service("p", ns, {"metadata": {
            "resourceVersion": svc.metadata.resource_version, "labels": {"a": "2"}}})
    assert caught.value.status == 409 and reason(caught.value) == "Conflict"


async def test_patch_missing_object_is_not_found(ns: str, core: CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        await core.patch_namespaced_service("nope", ns, {"metadata": {"labels": {}}})
    assert caught.value.status == 404


async def test_strategic_merge_on_custom_resource_is_415(ns: str, custom: CustomObjectsApi) -> None:
    await custom.create_namespaced_custom_object(*widgets(ns), widget("w"))
    with pytest.raises(ApiException) as caught:
        await custom.patch_namespaced_custom_object(*widgets(ns), "w", {"spec": {"size": 2}},
                                                    _content_type=STRATEGIC)
    assert caught.value.status == 415 and reason(caught.value) == "UnsupportedMediaType"


async def test_merge_and_json_patch_on_custom_resource(ns: str, custom: CustomObjectsApi) -> None:
    await custom.create_namespaced_custom_object(*widgets(ns), widget("w2", tags=["a"]))
    merged = await custom.patch_namespaced_custom_object(
        *widgets(ns), "w2", {"spec": {"tags": ["b", "c"]}}, _content_type=MERGE)
    assert merged["spec"]["tags"] == ["b", "c"]
    patched = await custom.patch_namespaced_custom_object(
        *widgets(ns), "w2", [{"op": "add", "path": "/spec/tags/-", "value": "d"}])
    assert patched["spec"]["tags"] == ["b", "c", "d"]


async def test_patch_main_resource_cannot_touch_status(ns: str, core: CoreV1Api) -> None:
    await core.create_namespaced_service(ns, lb_service("ps"))
    patched = await core.patch_namespaced_service("ps", ns, {"status": {
        "loadBalancer": {"ingress": [{"ip": "192.0.2.9"}]}}})
    assert not patched.status.load_balancer.ingress


async def test_patch_that_breaks_the_types_is_invalid(server: Server, core: CoreV1Api) -> None:
    """A body of the wrong JSON types is a bad request (400) when sent whole, but a patch
    that leaves the object undecodable is Invalid (422), blamed on the patch."""
    leases = CoordinationV1Api(core.api_client)
    await leases.create_namespaced_lease(server.ns, {"metadata": {"name": "typed"},
                                                     "spec": {}})
    url = server.url + (f"/apis/coordination.k8s.io/v1/namespaces/{server.ns}"
                        "/leases/typed")
    async with server.session() as session, session.patch(
            url, json={"spec": {"holderIdentity": 5}},
            headers={"Content-Type": MERGE}) as response:
        answer = await response.json()
    assert response.status == 422 and answer["reason"] == "Invalid", answer
    (cause,) = answer["details"]["causes"]
    assert cause["field"] == "patch"
    assert cause["message"].endswith(
        "json: cannot unmarshal number into Go struct field LeaseSpec.spec.holderIdentity of "
        "type string")
