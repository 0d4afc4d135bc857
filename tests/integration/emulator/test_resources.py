"""The built-in kinds a LoadBalancer controller touches, CRDs created over the API, and
discovery documents."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client import ApiException

from tests.integration.emulator.conftest import WIDGETS_CRD, Server

MICRO = "2026-11-21T08:00:00.123456Z"


async def get_json(server: Server, path: str) -> Any:
    async with server.session() as session, session.get(server.url + path) as response:
        assert response.status == 200, path
        return await response.json()


async def test_lease_round_trip_keeps_microsecond_times(ns: str, server: Server,
                                                        api: client.ApiClient) -> None:
    leases = client.CoordinationV1Api(api)
    body = {"metadata": {"name": "vipam-controller"}, "spec": {
        "holderIdentity": "node-a", "leaseDurationSeconds": 15, "acquireTime": MICRO,
        "renewTime": MICRO, "leaseTransitions": 0}}
    # send raw JSON so the exact microsecond spelling reaches the server
    async with server.session() as session, session.post(
            server.url + f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
            json=body) as response:
        assert response.status == 201
    stored = server.get_object("coordination.k8s.io/v1/leases", ns,
                                 "vipam-controller")
    assert stored is not None and stored["spec"]["renewTime"] == MICRO
    lease = await leases.read_namespaced_lease("vipam-controller", ns)
    assert lease.spec.renew_time.microsecond == 123456
    assert lease.spec.holder_identity == "node-a"


async def test_lease_takeover_race_has_one_winner(ns: str, api: client.ApiClient) -> None:
    leases = client.CoordinationV1Api(api)
    await leases.create_namespaced_lease(ns, {"metadata": {"name": "l"}, "spec": {
        "holderIdentity": "a", "leaseDurationSeconds": 15}})
    mine = await leases.read_namespaced_lease("l", ns)
    theirs = await leases.read_namespaced_lease("l", ns)
    mine.spec.holder_identity = "b"
    await leases.replace_namespaced_lease("l", ns, mine)
    theirs.spec.holder_identity = "c"
    with pytest.raises(ApiException) as caught:
        await leases.replace_namespaced_lease("l", ns, theirs)
    assert caught.value.status == 409


async def test_core_events_with_field_selector(ns: str, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    for name, obj in (("e1", "svc-a"), ("e2", "svc-b")):
        await core.create_namespaced_event(ns, {
            "metadata": {"name": name},
            "involvedObject": {"kind": "Service", "namespace": ns, "name": obj},
            "reason": "IPAllocated", "message": "192.0.2.1", "type": "Normal",
            "source": {"component": "vipam-controller"}})
    found = await core.list_namespaced_event(
        ns, field_selector="involvedObject.name=svc-b,reason=IPAllocated")
    assert [e.metadata.name for e in found.items] == ["e2"]


async def test_events_k8s_io_v1(ns: str, server: Server, api: client.ApiClient) -> None:
    events = client.EventsV1Api(api)
    body = {"metadata": {"name": "svc-a.1"}, "eventTime": MICRO,
            "reportingController": "vipam.io/controller", "reportingInstance": "vipam-0",
            "action": "Allocate", "reason": "IPAllocated", "type": "Normal",
            "regarding": {"kind": "Service", "namespace": ns, "name": "svc-a"},
            "note": "allocated 192.0.2.1"}
    created = await events.create_namespaced_event(ns, body)
    assert created.reason == "IPAllocated" and created.regarding.name == "svc-a"
    stored = server.get_object("events.k8s.io/v1/events", ns, "svc-a.1")
    assert stored is not None and stored["apiVersion"] == "events.k8s.io/v1"


async def test_nodes_endpoints_and_slices(ns: str, api: client.ApiClient,
                                          server: Server) -> None:
    core = client.CoreV1Api(api)
    node_name = server.unique("node")
    node = await core.create_node({"metadata": {"name": node_name, "labels": {
        "kubernetes.io/hostname": node_name}}})
    assert node.metadata.namespace is None
    patched = await core.patch_node_status(node_name, {"status": {"addresses": [
        {"type": "InternalIP", "address": "192.0.2.50"}]}})
    assert patched.status.addresses[0].address == "192.0.2.50"
    await core.create_namespaced_endpoints(ns, {"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": "192.0.2.60", "nodeName": node_name}], "ports": [{"port": 80}]}]})
    slices = client.DiscoveryV1Api(api)
    await slices.create_namespaced_endpoint_slice(ns, {
        "metadata": {"name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["192.0.2.60"], "nodeName": node_name,
                       "conditions": {"ready": True}}],
        "ports": [{"port": 80, "protocol": "TCP"}]})
    found = await slices.list_namespaced_endpoint_slice(
        ns, label_selector="kubernetes.io/service-name=web")
    assert [s.endpoints[0].node_name for s in found.items] == [node_name]
    assert server.get_object("v1/endpoints", ns, "web") is not None


async def test_crd_created_over_the_api_is_served(ns: str, server: Server,
                                                  api: client.ApiClient) -> None:
    """A CRD is served once Established; deleting it removes its objects. The real server
    sets Established a moment after the create (its CRD controller runs asynchronously) and
    deletes through the customresourcecleanup finalizer; the emulator does both at once. Both
    are waited for, as kubectl wait would."""
    extensions = client.ApiextensionsV1Api(api)
    number = server.unique("s").rpartition("-")[2]
    plural = f"sprockets{number}"
    crd = next(d for d in yaml.safe_load_all(WIDGETS_CRD.read_text())
               if d["metadata"]["name"] == "widgets.example.test")
    crd["metadata"]["name"] = f"{plural}.example.test"
    crd["spec"]["names"] = {"kind": f"Sprocket{number}", "plural": plural,
                            "singular": f"sprocket{number}"}
    await extensions.create_custom_resource_definition(crd)

    async def established() -> bool:
        read = await extensions.read_custom_resource_definition(f"{plural}.example.test")
        return any(c.type == "Established" and c.status == "True"
                   for c in (read.status.conditions or []))

    await wait_until(established, "Established")
    custom = client.CustomObjectsApi(api)
    body = {"apiVersion": "example.test/v1", "kind": f"Sprocket{number}",
            "metadata": {"name": "s"}, "spec": {"color": "green"}}
    await custom.create_namespaced_custom_object("example.test", "v1", ns, plural, body)
    await extensions.delete_custom_resource_definition(f"{plural}.example.test")

    async def gone() -> bool:
        try:
            await custom.get_namespaced_custom_object("example.test", "v1", ns, plural, "s")
        except ApiException as error:
            assert error.status == 404
            return True
        return False

    await wait_until(gone, "the custom resource gone with its CRD")


async def wait_until(probe: Any, what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await probe():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_invalid_crd_is_rejected(api: client.ApiClient) -> None:
    extensions = client.ApiextensionsV1Api(api)
    bad = {"metadata": {"name": "wrong.example.test"}, "spec": {
        "group": "example.test", "scope": "Galaxy",
        "names": {"kind": "Thing", "plural": "things"},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    with pytest.raises(ApiException) as caught:
        await extensions.create_custom_resource_definition(bad)
    assert caught.value.status == 422


async def test_discovery_documents(server: Server) -> None:
    version = await get_json(server, "/version")
    assert version["major"] == "1"
    core = await get_json(server, "/api/v1")
    names = {r["name"] for r in core["resources"]}
    assert {"services", "services/status", "namespaces", "events", "nodes",
            "endpoints"} <= names
    groups = {g["name"] for g in (await get_json(server, "/apis"))["groups"]}
    assert {"coordination.k8s.io", "discovery.k8s.io", "events.k8s.io",
            "apiextensions.k8s.io", "example.test"} <= groups
    widgets = await get_json(server, "/apis/example.test/v1")
    by_name = {r["name"]: r for r in widgets["resources"]}
    assert by_name["widgets"]["namespaced"] is True and "widgets/status" in by_name
    assert by_name["gadgets"]["namespaced"] is False and "gadgets/status" not in by_name
    assert (await get_json(server, "/apis/example.test"))["preferredVersion"]["version"] == "v1"


async def test_unknown_paths_are_404_status(ns: str, server: Server) -> None:
    async with server.session() as session:
        for path in ("/api/v1/widgets", "/apis/coordination.k8s.io/v9/leases",
                     f"/api/v1/namespaces/{ns}/services/x/scale"):
            async with session.get(server.url + path) as response:
                body = await response.json()
                assert response.status == 404 and body["reason"] == "NotFound", path
        # outside every API group the server's fallback answers in plain text, not a Status
        for path in ("/apis/nope.io/v1/things", "/apis/nope.io", "/nonsense"):
            async with session.get(server.url + path) as response:
                assert response.status == 404, path
                assert response.content_type == "text/plain", path
                assert await response.text() == "404 page not found\n", path
        async with session.put(server.url + f"/api/v1/namespaces/{ns}/services",
                               json={}) as response:
            assert response.status == 405
            assert (await response.json())["reason"] == "MethodNotAllowed"
        for method in ("OPTIONS", "HEAD", "TRACE"):  # never mistaken for another verb
            async with session.request(method, server.url + f"/api/v1/namespaces/{ns}"
                                       ) as response:
                assert response.status == 405, method
        assert server.get_object("v1/namespaces", None, ns) is not None
        async with session.post(server.url + f"/api/v1/namespaces/{ns}/services",
                                data=b"{not json", headers={
                                    "Content-Type": "application/json"}) as response:
            assert response.status == 400
            assert (await response.json())["reason"] == "BadRequest"


async def test_both_event_apis_share_storage(ns: str, server: Server,
                                             api: client.ApiClient) -> None:
    """Events written through events.k8s.io/v1 show up in core/v1 (kubectl get events) and
    the other way round, with the fields renamed as the apiserver converts them."""
    events = client.EventsV1Api(api)
    core = client.CoreV1Api(api)
    await events.create_namespaced_event(ns, {
        "metadata": {"name": "new-api"}, "eventTime": MICRO,
        "reportingController": "vipam.io/controller", "reportingInstance": "vipam-0",
        "action": "Allocate", "reason": "IPAllocated", "type": "Normal", "note": "192.0.2.1",
        "regarding": {"kind": "Service", "namespace": ns, "name": "svc-a"}})
    as_core = await core.read_namespaced_event("new-api", ns)
    assert (as_core.message, as_core.involved_object.name,
            as_core.reporting_component) == ("192.0.2.1", "svc-a", "vipam.io/controller")
    await core.create_namespaced_event(ns, {
        # eventTime set: kubernetes-asyncio's EventsV1Event model refuses events without it
        "metadata": {"name": "old-api"}, "reason": "IPReleased", "message": "bye",
        "eventTime": MICRO, "reportingComponent": "vipam", "reportingInstance": "vipam-0",
        "action": "Release",
        "involvedObject": {"kind": "Service", "namespace": ns, "name": "svc-b"}})
    listed = await events.list_namespaced_event(ns, field_selector="regarding.name=svc-b")
    assert [(e.metadata.name, e.note) for e in listed.items] == [("old-api", "bye")]
    # through events.k8s.io/v1 an event is immutable but for its series (what a recorder
    # counts); core/v1 keeps the legacy freedom
    with pytest.raises(ApiException) as caught:
        await events.patch_namespaced_event("new-api", ns, {"note": "changed"},
                                            _content_type="application/merge-patch+json")
    causes = json.loads(caught.value.body)["details"]["causes"]
    assert caught.value.status == 422 and [c["field"] for c in causes] == ["message"]
    patched = await events.patch_namespaced_event(
        "new-api", ns, {"series": {"count": 2, "lastObservedTime": MICRO}},
        _content_type="application/merge-patch+json")
    assert patched.series.count == 2
    assert (await core.read_namespaced_event("new-api", ns)).series.count == 2
    await core.patch_namespaced_event("new-api", ns, {"message": "changed"},
                                      _content_type="application/merge-patch+json")
    peek = server.get_object("events.k8s.io/v1/events", ns, "new-api")
    assert peek is not None and peek["note"] == "changed" and "message" not in peek


async def test_events_k8s_io_requires_the_new_fields(ns: str, server: Server) -> None:
    """The new Events API rejects an event without eventTime (the reporter fields are only
    checked once eventTime is there); an event with eventTime must name its reporter,
    instance and action through either API. A legacy core/v1 event without eventTime needs
    none of them."""
    body = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "thin"},
            "reason": "IPAllocated", "type": "Normal", "note": "x",
            "regarding": {"kind": "Service", "namespace": ns, "name": "svc"}}
    url = server.url + f"/apis/events.k8s.io/v1/namespaces/{ns}/events"
    async with server.session() as session, session.post(url, json=body) as response:
        status = await response.json()
    assert response.status == 422 and status["reason"] == "Invalid"
    fields = {c["field"] for c in status["details"]["causes"]}
    assert fields == {"eventTime"}
    async with server.session() as session, session.post(
            url, json={**body, "eventTime": MICRO}) as response:
        status = await response.json()
    assert response.status == 422
    fields = {c["field"] for c in status["details"]["causes"]}
    assert fields == {"reportingController", "reportingInstance", "action"}
    timed = {"metadata": {"name": "timed"}, "reason": "IPAllocated", "type": "Normal",
             "eventTime": MICRO,
             "involvedObject": {"kind": "Service", "namespace": ns, "name": "svc"}}
    async with server.session() as session, session.post(
            server.url + f"/api/v1/namespaces/{ns}/events", json=timed) as response:
        status = await response.json()
    assert response.status == 422
    fields = {c["field"] for c in status["details"]["causes"]}
    assert fields == {"reportingComponent", "reportingInstance", "action"}
    legacy = {"metadata": {"name": "thin"}, "reason": "IPAllocated", "type": "Normal",
              "involvedObject": {"kind": "Service", "namespace": ns, "name": "svc"}}
    async with server.session() as session, session.post(
            server.url + f"/api/v1/namespaces/{ns}/events", json=legacy) as response:
        assert response.status == 201


async def test_lease_duration_must_be_positive(ns: str, api: client.ApiClient) -> None:
    leases = client.CoordinationV1Api(api)
    with pytest.raises(ApiException) as caught:
        await leases.create_namespaced_lease(ns, {"metadata": {"name": "z"},
                                                             "spec": {"leaseDurationSeconds": 0}})
    assert caught.value.status == 422


@pytest.mark.parametrize(("body", "field"), [
    ({"addressType": "IPv5", "endpoints": []}, "addressType"),
    ({"addressType": "IPv4", "endpoints": [{"addresses": ["2001:db8::1"]}]},
     "endpoints[0].addresses"),
    ({"addressType": "IPv6", "endpoints": [{"addresses": []}]}, "endpoints[0].addresses"),
])
async def test_endpoint_slice_validation(ns: str, api: client.ApiClient, body: dict[str, Any],
                                         field: str) -> None:
    slices = client.DiscoveryV1Api(api)
    with pytest.raises(ApiException) as caught:
        await slices.create_namespaced_endpoint_slice(ns, {"metadata": {"name": "s"},
                                                                  **body})
    assert caught.value.status == 422
    causes = json.loads(caught.value.body)["details"]["causes"]
    assert field in [c["field"] for c in causes]
