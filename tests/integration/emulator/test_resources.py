"""The built-in kinds a LoadBalancer controller touches, CRDs created over the API, and
discovery documents."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client import ApiException

from devkit.emulator import Emulator
from tests.integration.emulator.conftest import WIDGETS_CRD

MICRO = "2026-11-21T08:00:00.123456Z"


async def get_json(emu: Emulator, path: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(emu.url + path) as response:
        assert response.status == 200, path
        return await response.json()


async def test_lease_round_trip_keeps_microsecond_times(emulator: Emulator,
                                                        api: client.ApiClient) -> None:
    leases = client.CoordinationV1Api(api)
    body = {"metadata": {"name": "vipam-controller"}, "spec": {
        "holderIdentity": "node-a", "leaseDurationSeconds": 15, "acquireTime": MICRO,
        "renewTime": MICRO, "leaseTransitions": 0}}
    # send raw JSON so the exact microsecond spelling reaches the server
    async with aiohttp.ClientSession() as session, session.post(
            emulator.url + "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases",
            json=body) as response:
        assert response.status == 201
    stored = emulator.get_object("coordination.k8s.io/v1/leases", "kube-system",
                                 "vipam-controller")
    assert stored is not None and stored["spec"]["renewTime"] == MICRO
    lease = await leases.read_namespaced_lease("vipam-controller", "kube-system")
    assert lease.spec.renew_time.microsecond == 123456
    assert lease.spec.holder_identity == "node-a"


async def test_lease_takeover_race_has_one_winner(api: client.ApiClient) -> None:
    leases = client.CoordinationV1Api(api)
    await leases.create_namespaced_lease("kube-system", {"metadata": {"name": "l"}, "spec": {
        "holderIdentity": "a", "leaseDurationSeconds": 15}})
    mine = await leases.read_namespaced_lease("l", "kube-system")
    theirs = await leases.read_namespaced_lease("l", "kube-system")
    mine.spec.holder_identity = "b"
    await leases.replace_namespaced_lease("l", "kube-system", mine)
    theirs.spec.holder_identity = "c"
    with pytest.raises(ApiException) as caught:
        await leases.replace_namespaced_lease("l", "kube-system", theirs)
    assert caught.value.status == 409


async def test_core_events_with_field_selector(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    for name, obj in (("e1", "svc-a"), ("e2", "svc-b")):
        await core.create_namespaced_event("default", {
            "metadata": {"name": name},
            "involvedObject": {"kind": "Service", "namespace": "default", "name": obj},
            "reason": "IPAllocated", "message": "192.0.2.1", "type": "Normal",
            "source": {"component": "vipam-controller"}})
    found = await core.list_namespaced_event(
        "default", field_selector="involvedObject.name=svc-b,reason=IPAllocated")
    assert [e.metadata.name for e in found.items] == ["e2"]


async def test_events_k8s_io_v1(emulator: Emulator, api: client.ApiClient) -> None:
    events = client.EventsV1Api(api)
    body = {"metadata": {"name": "svc-a.1"}, "eventTime": MICRO,
            "reportingController": "vipam.io/controller", "reportingInstance": "vipam-0",
            "action": "Allocate", "reason": "IPAllocated", "type": "Normal",
            "regarding": {"kind": "Service", "namespace": "default", "name": "svc-a"},
            "note": "allocated 192.0.2.1"}
    created = await events.create_namespaced_event("default", body)
    assert created.reason == "IPAllocated" and created.regarding.name == "svc-a"
    stored = emulator.get_object("events.k8s.io/v1/events", "default", "svc-a.1")
    assert stored is not None and stored["apiVersion"] == "events.k8s.io/v1"


async def test_nodes_endpoints_and_slices(api: client.ApiClient, emulator: Emulator) -> None:
    core = client.CoreV1Api(api)
    node = await core.create_node({"metadata": {"name": "node-a", "labels": {
        "kubernetes.io/hostname": "node-a"}}})
    assert node.metadata.namespace is None
    patched = await core.patch_node_status("node-a", {"status": {"addresses": [
        {"type": "InternalIP", "address": "192.0.2.50"}]}})
    assert patched.status.addresses[0].address == "192.0.2.50"
    await core.create_namespaced_endpoints("default", {"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": "192.0.2.60", "nodeName": "node-a"}], "ports": [{"port": 80}]}]})
    slices = client.DiscoveryV1Api(api)
    await slices.create_namespaced_endpoint_slice("default", {
        "metadata": {"name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["192.0.2.60"], "nodeName": "node-a",
                       "conditions": {"ready": True}}],
        "ports": [{"port": 80, "protocol": "TCP"}]})
    found = await slices.list_namespaced_endpoint_slice(
        "default", label_selector="kubernetes.io/service-name=web")
    assert [s.endpoints[0].node_name for s in found.items] == ["node-a"]
    assert emulator.get_object("v1/endpoints", "default", "web") is not None


async def test_crd_created_over_the_api_is_served_at_once(api: client.ApiClient,
                                                          tmp_path: Any) -> None:
    extensions = client.ApiextensionsV1Api(api)
    crd = next(d for d in yaml.safe_load_all(WIDGETS_CRD.read_text())
               if d["metadata"]["name"] == "widgets.example.test")
    crd["metadata"]["name"] = "sprockets.example.test"
    crd["spec"]["names"] = {"kind": "Sprocket", "plural": "sprockets", "singular": "sprocket"}
    created = await extensions.create_custom_resource_definition(crd)
    established = {c.type: c.status for c in created.status.conditions}
    assert established["Established"] == "True"
    custom = client.CustomObjectsApi(api)
    body = {"apiVersion": "example.test/v1", "kind": "Sprocket", "metadata": {"name": "s"},
            "spec": {"color": "green"}}
    await custom.create_namespaced_custom_object("example.test", "v1", "default", "sprockets",
                                                 body)
    await extensions.delete_custom_resource_definition("sprockets.example.test")
    with pytest.raises(ApiException) as caught:
        await custom.get_namespaced_custom_object("example.test", "v1", "default", "sprockets",
                                                  "s")
    assert caught.value.status == 404


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


async def test_discovery_documents(emulator: Emulator) -> None:
    version = await get_json(emulator, "/version")
    assert version["major"] == "1"
    core = await get_json(emulator, "/api/v1")
    names = {r["name"] for r in core["resources"]}
    assert {"services", "services/status", "namespaces", "events", "nodes",
            "endpoints"} <= names
    groups = {g["name"] for g in (await get_json(emulator, "/apis"))["groups"]}
    assert {"coordination.k8s.io", "discovery.k8s.io", "events.k8s.io",
            "apiextensions.k8s.io", "example.test"} <= groups
    widgets = await get_json(emulator, "/apis/example.test/v1")
    by_name = {r["name"]: r for r in widgets["resources"]}
    assert by_name["widgets"]["namespaced"] is True and "widgets/status" in by_name
    assert by_name["gadgets"]["namespaced"] is False and "gadgets/status" not in by_name
    assert (await get_json(emulator, "/apis/example.test"))["preferredVersion"]["version"] == "v1"


async def test_unknown_paths_are_404_status(emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/api/v1/widgets", "/apis/nope.io/v1/things",
                     "/api/v1/namespaces/default/services/x/scale"):
            async with session.get(emulator.url + path) as response:
                body = await response.json()
                assert response.status == 404 and body["reason"] == "NotFound", path
        async with session.put(emulator.url + "/api/v1/namespaces/default/services",
                               json={}) as response:
            assert response.status == 405
            assert (await response.json())["reason"] == "MethodNotAllowed"
        for method in ("OPTIONS", "HEAD", "TRACE"):  # never mistaken for another verb
            async with session.request(method, emulator.url + "/api/v1/namespaces/default"
                                       ) as response:
                assert response.status == 405, method
        assert emulator.get_object("v1/namespaces", None, "default") is not None
        async with session.post(emulator.url + "/api/v1/namespaces/default/services",
                                data=b"{not json", headers={
                                    "Content-Type": "application/json"}) as response:
            assert response.status == 400
            assert (await response.json())["reason"] == "BadRequest"


async def test_both_event_apis_share_storage(emulator: Emulator, api: client.ApiClient) -> None:
    """Events written through events.k8s.io/v1 show up in core/v1 (kubectl get events) and
    the other way round, with the fields renamed as the apiserver converts them."""
    events = client.EventsV1Api(api)
    core = client.CoreV1Api(api)
    await events.create_namespaced_event("default", {
        "metadata": {"name": "new-api"}, "eventTime": MICRO,
        "reportingController": "vipam.io/controller", "reportingInstance": "vipam-0",
        "action": "Allocate", "reason": "IPAllocated", "type": "Normal", "note": "192.0.2.1",
        "regarding": {"kind": "Service", "namespace": "default", "name": "svc-a"}})
    as_core = await core.read_namespaced_event("new-api", "default")
    assert (as_core.message, as_core.involved_object.name,
            as_core.reporting_component) == ("192.0.2.1", "svc-a", "vipam.io/controller")
    await core.create_namespaced_event("default", {
        # eventTime set: kubernetes-asyncio's EventsV1Event model refuses events without it
        "metadata": {"name": "old-api"}, "reason": "IPReleased", "message": "bye",
        "eventTime": MICRO, "reportingComponent": "vipam", "reportingInstance": "vipam-0",
        "involvedObject": {"kind": "Service", "namespace": "default", "name": "svc-b"}})
    listed = await events.list_namespaced_event("default", field_selector="regarding.name=svc-b")
    assert [(e.metadata.name, e.note) for e in listed.items] == [("old-api", "bye")]
    patched = await events.patch_namespaced_event("new-api", "default", {"note": "changed"},
                                                  _content_type="application/merge-patch+json")
    assert patched.note == "changed"
    assert (await core.read_namespaced_event("new-api", "default")).message == "changed"
    peek = emulator.get_object("events.k8s.io/v1/events", "default", "new-api")
    assert peek is not None and peek["note"] == "changed" and "message" not in peek


async def test_events_k8s_io_requires_the_new_fields(emulator: Emulator) -> None:
    """The new Events API rejects events missing eventTime/reportingController/... (a common
    controller bug: the legacy core/v1 API accepts them)."""
    body = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "thin"},
            "reason": "IPAllocated", "type": "Normal", "note": "x",
            "regarding": {"kind": "Service", "namespace": "default", "name": "svc"}}
    url = emulator.url + "/apis/events.k8s.io/v1/namespaces/default/events"
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        status = await response.json()
    assert response.status == 422 and status["reason"] == "Invalid"
    fields = {c["field"] for c in status["details"]["causes"]}
    assert fields == {"eventTime", "reportingController", "reportingInstance", "action"}
    legacy = {"metadata": {"name": "thin"}, "reason": "IPAllocated", "type": "Normal",
              "involvedObject": {"kind": "Service", "namespace": "default", "name": "svc"}}
    async with aiohttp.ClientSession() as session, session.post(
            emulator.url + "/api/v1/namespaces/default/events", json=legacy) as response:
        assert response.status == 201


async def test_lease_duration_must_be_positive(api: client.ApiClient) -> None:
    leases = client.CoordinationV1Api(api)
    with pytest.raises(ApiException) as caught:
        await leases.create_namespaced_lease("kube-system", {"metadata": {"name": "z"},
                                                             "spec": {"leaseDurationSeconds": 0}})
    assert caught.value.status == 422


@pytest.mark.parametrize(("body", "field"), [
    ({"addressType": "IPv5", "endpoints": []}, "addressType"),
    ({"addressType": "IPv4", "endpoints": [{"addresses": ["2001:db8::1"]}]},
     "endpoints[0].addresses[0]"),
    ({"addressType": "IPv6", "endpoints": [{"addresses": []}]}, "endpoints[0].addresses"),
])
async def test_endpoint_slice_validation(api: client.ApiClient, body: dict[str, Any],
                                         field: str) -> None:
    slices = client.DiscoveryV1Api(api)
    with pytest.raises(ApiException) as caught:
        await slices.create_namespaced_endpoint_slice("default", {"metadata": {"name": "s"},
                                                                  **body})
    assert caught.value.status == 422
    causes = json.loads(caught.value.body)["details"]["causes"]
    assert field in [c["field"] for c in causes]
