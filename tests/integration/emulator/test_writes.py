"""Create/get/update semantics: metadata, 409s, the lost-update race, status isolation."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from datetime import datetime
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiException, CoordinationV1Api, CoreV1Api, CustomObjectsApi

from tests.integration.emulator.conftest import (
    Server,
    lb_service,
    reason,
    status_body,
    widget,
)

pytestmark = pytest.mark.asyncio
# kubernetes-asyncio sends a dict body to custom-object PATCH as json-patch unless told otherwise
MERGE = "application/merge-patch+json"


async def test_create_sets_server_metadata(ns: str, core: CoreV1Api) -> None:
    svc = await core.create_namespaced_service(ns, lb_service("web"))
    meta = svc.metadata
    assert uuid.UUID(meta.uid)
    assert isinstance(meta.creation_timestamp, datetime)
    assert meta.generation is None  # Services carry no generation (issue 10: the one
    assert int(meta.resource_version) > 0  # divergence that mattered)
    assert meta.namespace == ns
    # apiserver defaults the controller reads back
    assert svc.spec.ip_families == ["IPv4"] and svc.spec.ip_family_policy == "SingleStack"
    assert svc.spec.ports[0].protocol == "TCP" and svc.spec.ports[0].target_port == 80


V4, V6 = ipaddress.ip_network("10.96.0.0/16"), ipaddress.ip_network("fd00:10:96::/112")


def _shape(spec: dict[str, Any]) -> dict[str, Any]:
    """A Service spec with what the server allocated replaced by what it must be: a
    ClusterIP per family from the service ranges, NodePorts from 30000-32767."""
    def family(ip: str) -> str:
        address = ipaddress.ip_address(ip)
        assert address in (V4 if address.version == 4 else V6), ip
        return f"<IPv{address.version}>"

    shaped = dict(spec)
    if spec.get("clusterIPs") and spec["clusterIPs"] != ["None"]:
        shaped["clusterIPs"] = [family(ip) for ip in spec["clusterIPs"]]
        assert spec["clusterIP"] == spec["clusterIPs"][0]
        shaped["clusterIP"] = shaped["clusterIPs"][0]
    ports = []
    for port in spec.get("ports") or []:
        if "nodePort" in port:
            assert 30000 <= port["nodePort"] <= 32767, port
            port = {**port, "nodePort": "<allocated>"}
        ports.append(port)
    if ports:
        shaped["ports"] = ports
    if "healthCheckNodePort" in spec:
        assert 30000 <= spec["healthCheckNodePort"] <= 32767
        shaped["healthCheckNodePort"] = "<allocated>"
    return shaped


LB_DEFAULTS = {"type": "LoadBalancer", "sessionAffinity": "None", "internalTrafficPolicy":
               "Cluster", "externalTrafficPolicy": "Cluster",
               "allocateLoadBalancerNodePorts": True}
PORT_80 = {"protocol": "TCP", "port": 80, "targetPort": 80, "nodePort": "<allocated>"}


@pytest.mark.parametrize(("spec", "expected"), [
    ({"type": "LoadBalancer", "ports": [{"port": 80}]},
     {**LB_DEFAULTS, "ports": [PORT_80], "clusterIP": "<IPv4>", "clusterIPs": ["<IPv4>"],
      "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}),
    ({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
      "ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]},
     {**LB_DEFAULTS, "externalTrafficPolicy": "Local", "healthCheckNodePort": "<allocated>",
      "ports": [PORT_80], "clusterIP": "<IPv4>", "clusterIPs": ["<IPv4>", "<IPv6>"],
      "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack"}),
    ({"type": "LoadBalancer", "ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv6"],
      "ports": [{"port": 80}]},
     {**LB_DEFAULTS, "ports": [PORT_80], "clusterIP": "<IPv6>", "clusterIPs": ["<IPv6>",
                                                                              "<IPv4>"],
      "ipFamilies": ["IPv6", "IPv4"], "ipFamilyPolicy": "RequireDualStack"}),
    ({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": False, "ipFamilies": ["IPv6"],
      "ports": [{"port": 80}]},
     {**LB_DEFAULTS, "allocateLoadBalancerNodePorts": False,
      "ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}], "clusterIP": "<IPv6>",
      "clusterIPs": ["<IPv6>"], "ipFamilies": ["IPv6"], "ipFamilyPolicy": "SingleStack"}),
    ({"type": "NodePort", "ports": [{"port": 80}]},
     {"type": "NodePort", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
      "externalTrafficPolicy": "Cluster", "ports": [PORT_80], "clusterIP": "<IPv4>",
      "clusterIPs": ["<IPv4>"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}),
    ({"clusterIP": "None", "ports": [{"port": 80}]},
     {"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
      "ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}], "clusterIP": "None",
      "clusterIPs": ["None"], "ipFamilies": ["IPv4", "IPv6"],
      "ipFamilyPolicy": "RequireDualStack"}),
    ({"type": "ExternalName", "externalName": "example.com"},
     {"type": "ExternalName", "sessionAffinity": "None", "externalName": "example.com"}),
], ids=["lb", "local-dual", "require-dual-v6-first", "no-node-ports-v6", "nodeport",
        "headless", "external-name"])
async def test_service_defaults_and_allocations(ns: str, core: CoreV1Api, spec: dict[str, Any],
                                                expected: dict[str, Any]) -> None:
    """What a Service looks like once the server has defaulted it and allocated its
    ClusterIPs and NodePorts, on a dual-stack cluster (IPv4 first)."""
    svc = await core.create_namespaced_service(ns, {"metadata": {"name": "d"}, "spec": spec})
    stored = core.api_client.sanitize_for_serialization(svc)
    assert _shape(stored["spec"]) == expected


async def test_the_kubernetes_service_is_there(server: Server) -> None:
    """The API server's own Service, in every cluster's default namespace."""
    svc = server.get_object("v1/services", "default", "kubernetes")
    assert svc is not None
    spec = svc["spec"]
    assert (spec["type"], spec["clusterIP"], spec["clusterIPs"]) == (
        "ClusterIP", "10.96.0.1", ["10.96.0.1"])
    assert [(p["name"], p["port"], p["protocol"]) for p in spec["ports"]] == [
        ("https", 443, "TCP")]


async def test_resource_versions_grow_across_kinds(ns: str, core: CoreV1Api,
                                                  custom: CustomObjectsApi) -> None:
    """One etcd revision orders every kind. Clients must treat versions as opaque: the real
    server's grow by its own writes too (its identity Leases), so no test counts steps."""
    a = await core.create_namespaced_service(ns, lb_service("a"))
    w = await custom.create_namespaced_custom_object("example.test", "v1", ns, "widgets",
                                                     widget("w"))
    b = await core.create_namespaced_config_map(ns, {"metadata": {"name": "c"}})
    versions = [int(a.metadata.resource_version), int(w["metadata"]["resourceVersion"]),
                int(b.metadata.resource_version)]
    assert versions == sorted(versions) and len(set(versions)) == 3


async def test_create_existing_is_already_exists(ns: str, core: CoreV1Api) -> None:
    await core.create_namespaced_service(ns, lb_service("dup"))
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_service(ns, lb_service("dup"))
    assert caught.value.status == 409 and reason(caught.value) == "AlreadyExists"


async def test_generate_name(ns: str, core: CoreV1Api) -> None:
    created = await core.create_namespaced_config_map(
        ns, {"metadata": {"generateName": "cfg-"}})
    assert created.metadata.name.startswith("cfg-") and len(created.metadata.name) > 4


async def test_create_in_missing_namespace_is_not_found(core: CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_service("nowhere", lb_service("x"))
    assert caught.value.status == 404 and reason(caught.value) == "NotFound"


async def test_get_missing_is_not_found_status(ns: str, core: CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        await core.read_namespaced_service("missing", ns)
    assert caught.value.status == 404 and reason(caught.value) == "NotFound"
    assert status_body(caught.value)["message"] == 'services "missing" not found'


async def test_put_with_stale_version_conflicts(ns: str, core: CoreV1Api) -> None:
    svc = await core.create_namespaced_service(ns, lb_service("web"))
    svc.metadata.labels = {"a": "1"}
    fresh = await core.replace_namespaced_service("web", ns, svc)
    assert int(fresh.metadata.resource_version) > int(svc.metadata.resource_version)
    svc.metadata.labels = {"a": "2"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as caught:
        await core.replace_namespaced_service("web", ns, svc)
    assert caught.value.status == 409 and reason(caught.value) == "Conflict"
    assert (await core.read_namespaced_service("web", ns)).metadata.labels == {"a": "1"}


async def test_put_of_a_missing_object(ns: str, server: Server, core: CoreV1Api) -> None:
    """Services (like Leases, Events, Endpoints) allow create-on-update: a PUT of a missing
    one creates it, even with a stale resourceVersion. A body that names a uid does not: a
    controller writing back a Service it read cannot resurrect one deleted meanwhile (409).
    ConfigMaps (like Secrets, Nodes, custom resources) answer 404."""
    body = lb_service("ghost")
    body["metadata"]["resourceVersion"] = "12345"  # type: ignore[index]
    created = await core.replace_namespaced_service("ghost", ns, body)
    assert created.metadata.uid and created.metadata.resource_version != "12345"
    await core.delete_namespaced_service("ghost", ns)
    with pytest.raises(ApiException) as caught:
        await core.replace_namespaced_service("ghost", ns, created)
    assert caught.value.status == 409 and reason(caught.value) == "Conflict"
    assert "Precondition failed: UID in precondition" in str(status_body(caught.value)["message"])
    assert server.get_object("v1/services", ns, "ghost") is None
    with pytest.raises(ApiException) as caught:
        await core.replace_namespaced_config_map("ghost", ns, {"metadata": {"name": "ghost"}})
    assert caught.value.status == 404 and reason(caught.value) == "NotFound"


async def test_lost_update_race_exactly_one_wins(ns: str, core: CoreV1Api) -> None:
    """Two writers read the same version and PUT concurrently: one wins, one gets 409."""
    base = await core.create_namespaced_service(ns, lb_service("race"))
    first = await core.read_namespaced_service("race", ns)
    second = await core.read_namespaced_service("race", ns)
    first.metadata.annotations = {"writer": "first"}
    second.metadata.annotations = {"writer": "second"}
    results = await asyncio.gather(
        core.replace_namespaced_service("race", ns, first),
        core.replace_namespaced_service("race", ns, second),
        return_exceptions=True,
    )
    conflicts = [r for r in results if isinstance(r, ApiException) and r.status == 409]
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(conflicts) == 1 and len(winners) == 1
    stored = await core.read_namespaced_service("race", ns)
    assert stored.metadata.annotations == winners[0].metadata.annotations
    assert stored.metadata.resource_version == winners[0].metadata.resource_version
    assert int(stored.metadata.resource_version) > int(base.metadata.resource_version)


async def test_main_resource_write_ignores_status(ns: str, core: CoreV1Api) -> None:
    await core.create_namespaced_service(ns, lb_service("iso"))
    await core.patch_namespaced_service_status(
        "iso", ns, {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}})
    svc = await core.read_namespaced_service("iso", ns)
    svc.status.load_balancer.ingress = []
    svc.metadata.labels = {"changed": "yes"}
    updated = await core.replace_namespaced_service("iso", ns, svc)
    assert updated.metadata.labels == {"changed": "yes"}
    assert [i.ip for i in updated.status.load_balancer.ingress] == ["192.0.2.10"]


async def test_status_write_keeps_the_spec(ns: str, core: CoreV1Api) -> None:
    """A Service's status write keeps the stored spec but writes metadata (labels,
    annotations, finalizers) as sent: the status strategy of built-in kinds resets spec
    only. A controller must not send metadata changes through /status it does not mean."""
    await core.create_namespaced_service(ns, lb_service("iso2"))
    svc = await core.read_namespaced_service("iso2", ns)
    svc.spec.type = "ClusterIP"
    svc.metadata.labels = {"sneaky": "yes"}
    svc.status.load_balancer.ingress = [{"ip": "192.0.2.11", "ipMode": "VIP"}]
    updated = await core.replace_namespaced_service_status("iso2", ns, svc)
    assert updated.spec.type == "LoadBalancer"
    assert updated.metadata.labels == {"sneaky": "yes"}
    assert [i.ip for i in updated.status.load_balancer.ingress] == ["192.0.2.11"]


async def test_custom_resource_status_write_changes_only_status(
        ns: str, custom: CustomObjectsApi) -> None:
    args = ("example.test", "v1", ns, "widgets")
    created = await custom.create_namespaced_custom_object(*args, widget("only"))
    created["metadata"]["labels"] = {"sneaky": "yes"}
    created["spec"]["color"] = "blue"
    created["status"] = {"phase": "Ready"}
    updated = await custom.replace_namespaced_custom_object_status(*args, "only", created)
    assert updated["status"] == {"phase": "Ready"} and updated["spec"]["color"] == "red"
    assert not updated["metadata"].get("labels")


async def test_ip_mode_defaults_from_the_body_as_sent(ns: str, core: CoreV1Api) -> None:
    """ipMode is required with an ip, and defaulted to VIP while decoding a body that says
    type LoadBalancer: a status write whose body carries another type gets no default, even
    though the status write keeps the stored spec (kube-apiserver's SetDefaults_Service)."""
    await core.create_namespaced_service(ns, lb_service("mode"))
    svc = await core.read_namespaced_service("mode", ns)
    svc.status.load_balancer.ingress = [{"ip": "192.0.2.11"}]
    defaulted = await core.replace_namespaced_service_status("mode", ns, svc)
    assert [(i.ip, i.ip_mode) for i in defaulted.status.load_balancer.ingress] == [
        ("192.0.2.11", "VIP")]
    defaulted.spec.type = "ClusterIP"
    defaulted.status.load_balancer.ingress = [{"ip": "192.0.2.12"}]
    with pytest.raises(ApiException) as caught:
        await core.replace_namespaced_service_status("mode", ns, defaulted)
    assert caught.value.status == 422
    causes = status_body(caught.value)["details"]["causes"]  # type: ignore[index]
    assert [(c["field"], c["message"]) for c in causes] == [
        ("status.loadBalancer.ingress[0].ipMode",
         "Required value: must be specified when `ip` is set")]


async def test_status_in_create_is_dropped(ns: str, core: CoreV1Api) -> None:
    body = lb_service("pre")
    body["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.12"}]}}
    created = await core.create_namespaced_service(ns, body)
    assert not created.status.load_balancer.ingress


async def test_generation_bumps_on_spec_changes_only(ns: str,
                                                     custom: CustomObjectsApi) -> None:
    args = ("example.test", "v1", ns, "widgets")
    created = await custom.create_namespaced_custom_object(*args, widget("gen"))
    assert created["metadata"]["generation"] == 1
    labelled = await custom.patch_namespaced_custom_object(
        *args, "gen", {"metadata": {"labels": {"x": "y"}}}, _content_type=MERGE)
    assert labelled["metadata"]["generation"] == 1
    status = await custom.patch_namespaced_custom_object_status(
        *args, "gen", {"status": {"phase": "Running"}}, _content_type=MERGE)
    assert status["metadata"]["generation"] == 1 and status["status"] == {"phase": "Running"}
    changed = await custom.patch_namespaced_custom_object(*args, "gen", {"spec": {"size": 5}},
                                                          _content_type=MERGE)
    assert changed["metadata"]["generation"] == 2


async def test_noop_write_keeps_resource_version(ns: str, core: CoreV1Api) -> None:
    svc = await core.create_namespaced_service(ns, lb_service("same"))
    again = await core.replace_namespaced_service("same", ns, svc)
    assert again.metadata.resource_version == svc.metadata.resource_version


async def test_custom_resource_status_isolation(ns: str, custom: CustomObjectsApi) -> None:
    args = ("example.test", "v1", ns, "widgets")
    await custom.create_namespaced_custom_object(*args, widget("st"))
    await custom.patch_namespaced_custom_object_status(*args, "st", {"status": {"phase": "A"}},
                                                       _content_type=MERGE)
    obj = await custom.get_namespaced_custom_object(*args, "st")
    obj["status"] = {"phase": "B"}
    obj["spec"]["color"] = "blue"
    replaced = await custom.replace_namespaced_custom_object(*args, "st", obj)
    assert replaced["status"] == {"phase": "A"} and replaced["spec"]["color"] == "blue"


async def test_cluster_scoped_custom_resource_without_status_subresource(
        server: Server, custom: CustomObjectsApi) -> None:
    name = server.unique("g")
    body = {"apiVersion": "example.test/v1", "kind": "Gadget", "metadata": {"name": name},
            "spec": {"mode": "x"}, "status": {"seen": True}}
    created = await custom.create_cluster_custom_object("example.test", "v1", "gadgets", body)
    assert created["status"] == {"seen": True}  # no subresource: status is ordinary data
    assert "namespace" not in created["metadata"]
    fetched = await custom.get_cluster_custom_object("example.test", "v1", "gadgets", name)
    assert fetched["spec"] == {"mode": "x"}
    await custom.delete_cluster_custom_object("example.test", "v1", "gadgets", name)


async def test_create_with_resource_version_fails(ns: str, core: CoreV1Api) -> None:
    """Re-creating an object read from the API without clearing its version fails; the real
    server answers with its storage layer's error: a 500 with no reason."""
    svc = await core.create_namespaced_service(ns, lb_service("copy"))
    await core.delete_namespaced_service("copy", ns)
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_service(ns, svc)
    body = status_body(caught.value)
    assert caught.value.status == 500 and "reason" not in body
    assert body["message"] == "resourceVersion should not be set on objects to be created"


async def test_optimistic_concurrency_loses_no_update(ns: str, core: CoreV1Api) -> None:
    """Eight writers increment one counter by read-modify-write in lockstep rounds: in every
    round exactly one PUT wins and seven get 409, and no increment is ever lost."""
    writers, rounds = 8, 10
    await core.create_namespaced_config_map(ns, {"metadata": {"name": "counter"},
                                                        "data": {"n": "0"}})
    barrier = asyncio.Barrier(writers)
    outcomes: list[list[str]] = [[] for _ in range(rounds)]

    async def writer() -> None:
        for round_ in range(rounds):
            current = await core.read_namespaced_config_map("counter", ns)
            await barrier.wait()  # everyone holds the same version before anyone writes
            current.data["n"] = str(int(current.data["n"]) + 1)
            try:
                await core.replace_namespaced_config_map("counter", ns, current)
                outcomes[round_].append("won")
            except ApiException as error:
                assert error.status == 409
                outcomes[round_].append("conflict")
            await barrier.wait()

    await asyncio.gather(*(writer() for _ in range(writers)))
    assert all(sorted(o) == ["conflict"] * (writers - 1) + ["won"] for o in outcomes)
    final = await core.read_namespaced_config_map("counter", ns)
    assert final.data["n"] == str(rounds)


async def test_put_without_resource_version(ns: str, core: CoreV1Api,
                                            custom: CustomObjectsApi) -> None:
    """Most built-in kinds take an unconditional PUT (last writer wins); Leases and custom
    resources insist on a resourceVersion, so no elector or controller can overwrite blindly."""
    await core.create_namespaced_config_map(ns, {"metadata": {"name": "free"}})
    written = await core.replace_namespaced_config_map(
        "free", ns, {"metadata": {"name": "free", "labels": {"a": "b"}}})
    assert written.metadata.labels == {"a": "b"}
    leases = CoordinationV1Api(core.api_client)
    await leases.create_namespaced_lease(ns, {"metadata": {"name": "held"}, "spec": {}})
    with pytest.raises(ApiException) as caught:
        await leases.replace_namespaced_lease("held", ns, {"metadata": {"name": "held"},
                                                           "spec": {"holderIdentity": "me"}})
    causes = status_body(caught.value)["details"]["causes"]  # type: ignore[index]
    assert caught.value.status == 422 and [(c["field"], c["message"]) for c in causes] == [
        ("metadata.resourceVersion", "Invalid value: 0: must be specified for an update")]
    args = ("example.test", "v1", ns, "widgets")
    await custom.create_namespaced_custom_object(*args, widget("blind"))
    with pytest.raises(ApiException) as caught:
        await custom.replace_namespaced_custom_object(*args, "blind", widget("blind"))
    assert caught.value.status == 422


@pytest.mark.parametrize("content_type", ["application/merge-patch+json",
                                          "application/strategic-merge-patch+json",
                                          "application/json-patch+json", "text/plain"])
async def test_create_and_replace_take_whole_objects_only(server: Server,
                                                          content_type: str) -> None:
    url = server.url + f"/api/v1/namespaces/{server.ns}/configmaps"
    body = b'{"metadata": {"name": "typed"}}'
    async with server.session() as session:
        async with session.post(url, data=body,
                                headers={"Content-Type": content_type}) as response:
            answer = await response.json()
            assert response.status == 415 and answer["reason"] == "UnsupportedMediaType"
        async with session.post(url, data=body,
                                headers={"Content-Type": "application/json"}) as response:
            assert response.status == 201
        async with session.put(url + "/typed", data=body,
                               headers={"Content-Type": content_type}) as response:
            assert response.status == 415
