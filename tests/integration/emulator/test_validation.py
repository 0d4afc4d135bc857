"""The validation a controller relies on: Service fields and CRD schemas (with pruning and
defaulting, as a real apiserver does them)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio.client import ApiException, CoreV1Api, CustomObjectsApi

from devkit.emulator.validation import validate_conditions
from tests.integration.emulator.conftest import (
    Server,
    lb_service,
    reason,
    status_body,
    widget,
)


def widgets(ns: str) -> tuple[str, str, str, str]:
    return ("example.test", "v1", ns, "widgets")


async def expect_invalid(call: Any, field: str) -> None:
    with pytest.raises(ApiException) as caught:
        await call
    assert caught.value.status == 422 and reason(caught.value) == "Invalid"
    causes = status_body(caught.value)["details"]["causes"]  # type: ignore[index]
    assert field in [c["field"] for c in causes], causes


async def test_service_type_enum(ns: str, core: CoreV1Api) -> None:
    await expect_invalid(core.create_namespaced_service(ns, lb_service(
        "bad", type="Loadbalancer")), "spec.type")


async def test_service_ports_required_and_ranged(ns: str, core: CoreV1Api) -> None:
    await expect_invalid(core.create_namespaced_service(ns, lb_service(
        "noports", ports=[])), "spec.ports")
    await expect_invalid(core.create_namespaced_service(ns, lb_service(
        "big", ports=[{"port": 70000}])), "spec.ports[0].port")


async def test_service_name_must_be_dns_label(ns: str, core: CoreV1Api) -> None:
    await expect_invalid(core.create_namespaced_service(ns, lb_service("Bad_Name")),
                         "metadata.name")


async def test_load_balancer_class_is_immutable_once_set(ns: str, core: CoreV1Api) -> None:
    await core.create_namespaced_service(ns, lb_service(
        "cls", loadBalancerClass="vipam.io/vipam"))
    await expect_invalid(core.patch_namespaced_service("cls", ns, {"spec": {
        "loadBalancerClass": "other.example/lb"}}), "spec.loadBalancerClass")
    await core.create_namespaced_service(ns, lb_service("nocls"))
    await expect_invalid(core.patch_namespaced_service("nocls", ns, {"spec": {
        "loadBalancerClass": "vipam.io/vipam"}}), "spec.loadBalancerClass")
    unchanged = await core.patch_namespaced_service("cls", ns, {"metadata": {
        "labels": {"a": "b"}}})
    assert unchanged.spec.load_balancer_class == "vipam.io/vipam"


async def test_load_balancer_class_only_on_load_balancers(ns: str, core: CoreV1Api) -> None:
    await expect_invalid(core.create_namespaced_service(ns, lb_service(
        "cip", type="ClusterIP", loadBalancerClass="vipam.io/vipam")), "spec.loadBalancerClass")


@pytest.mark.parametrize("address", ["192.0.2.300", "not-an-ip", "2001:db8::zz"])
async def test_ingress_ips_must_be_valid(ns: str, core: CoreV1Api, address: str) -> None:
    await core.create_namespaced_service(ns, lb_service("ing"))
    await expect_invalid(core.patch_namespaced_service_status("ing", ns, {"status": {
        "loadBalancer": {"ingress": [{"ip": address}]}}}), "status.loadBalancer.ingress[0].ip")


async def test_ingress_ip_mode_enum(ns: str, core: CoreV1Api) -> None:
    await core.create_namespaced_service(ns, lb_service("mode"))
    await expect_invalid(core.patch_namespaced_service_status("mode", ns, {"status": {
        "loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ipMode": "Direct"}]}}}),
        "status.loadBalancer.ingress[0].ipMode")
    ok = await core.patch_namespaced_service_status("mode", ns, {"status": {
        "loadBalancer": {"ingress": [{"ip": "2001:db8::5", "ipMode": "VIP"}]}}})
    assert ok.status.load_balancer.ingress[0].ip_mode == "VIP"


@pytest.mark.parametrize(("spec", "field"), [
    ({"color": "purple"}, "spec.color"),           # enum
    ({"color": "red", "size": "big"}, "spec.size"),  # type
    ({"color": "red", "size": 11}, "spec.size"),     # maximum
    ({"color": "red", "code": "abc-1"}, "spec.code"),  # pattern
    ({"color": "red", "address": "192.0.2.999"}, "spec.address"),  # format
    ({"color": "red", "tags": ["a", "b", "c", "d"]}, "spec.tags"),  # maxItems
    ({"color": "red", "labels": {"a": 1}}, "spec.labels.a"),  # additionalProperties
    # format: int32; kube-apiserver 1.36 names no field for this one (its cause says "<nil>")
    ({"color": "red", "weight": 2**31}, "<nil>"),
    ({"size": 2}, "spec.color"),                      # required
])
async def test_custom_resource_schema(ns: str, custom: CustomObjectsApi, spec: dict[str, Any],
                                      field: str) -> None:
    body = widget("w")
    body["spec"] = spec
    await expect_invalid(custom.create_namespaced_custom_object(*widgets(ns), body), field)


async def test_custom_resource_required_top_level(ns: str, custom: CustomObjectsApi) -> None:
    body = widget("nospec")
    del body["spec"]
    await expect_invalid(custom.create_namespaced_custom_object(*widgets(ns), body), "spec")


async def test_schema_defaults_and_pruning(ns: str, custom: CustomObjectsApi) -> None:
    body = widget("pd", code="ABC-12", unknown="dropped", extra={"free": {"form": 1}})
    body["topLevelJunk"] = True
    created = await custom.create_namespaced_custom_object(*widgets(ns), body)
    assert created["spec"] == {"color": "red", "code": "ABC-12", "size": 3,
                               "extra": {"free": {"form": 1}}}
    assert "topLevelJunk" not in created


@pytest.mark.parametrize(("conditions", "field"), [
    ([{"type": "Ready", "status": "Yes"}], "status.conditions[0].status"),
    ([{"type": "Ready", "status": "True"}, {"type": "Ready", "status": "False"}],
     "status.conditions[1]"),  # listType=map keyed by type
    ([{"type": "Ready", "status": "True", "lastTransitionTime": "yesterday"}],
     "status.conditions[0].lastTransitionTime"),  # format: date-time
])
async def test_status_is_validated_on_status_writes(ns: str, custom: CustomObjectsApi,
                                                    conditions: list[Any], field: str) -> None:
    await custom.create_namespaced_custom_object(*widgets(ns), widget("sv"))
    await expect_invalid(custom.patch_namespaced_custom_object_status(
        *widgets(ns), "sv", {"status": {"conditions": conditions}},
        _content_type="application/merge-patch+json"), field)


async def test_valid_conditions_and_formats_pass(ns: str, custom: CustomObjectsApi) -> None:
    await custom.create_namespaced_custom_object(*widgets(ns), widget("ok", weight=2**31 - 1))
    patched = await custom.patch_namespaced_custom_object_status(
        *widgets(ns), "ok", {"status": {"conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-21T08:00:00Z",
             "observedGeneration": 1},
            {"type": "Other", "status": "False",
             "lastTransitionTime": "2026-11-21T08:00:00.5+01:00"}]}},
        _content_type="application/merge-patch+json")
    assert [c["type"] for c in patched["status"]["conditions"]] == ["Ready", "Other"]


async def test_wrong_kind_is_bad_request(ns: str, core: CoreV1Api) -> None:
    body = lb_service("k")
    body["kind"] = "ConfigMap"
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_service(ns, body)
    assert caught.value.status == 400 and reason(caught.value) == "BadRequest"


async def test_field_validation_strict_rejects_unknown_fields(server: Server) -> None:
    body = widget("strict", colour="red")
    url = server.url + f"/apis/example.test/v1/namespaces/{server.ns}/widgets"
    async with server.session() as session:
        async with session.post(url, json=body, params={"fieldValidation": "Strict"}) as resp:
            status = await resp.json()
            assert resp.status == 400 and status["reason"] == "BadRequest"
            assert 'unknown field "spec.colour"' in status["message"]
        async with session.post(url, json=body) as resp:  # default Warn: pruned, with a warning
            assert resp.status == 201
            assert resp.headers["Warning"] == '299 - "unknown field \\"spec.colour\\""'
            assert "colour" not in (await resp.json())["spec"]


async def test_leaving_load_balancer_drops_its_fields(ns: str, core: CoreV1Api) -> None:
    await core.create_namespaced_service(ns, lb_service(
        "switch", loadBalancerClass="vipam.io/vipam"))
    switched = await core.patch_namespaced_service("switch", ns, {"spec": {
        "type": "ClusterIP"}})
    assert switched.spec.type == "ClusterIP"
    assert switched.spec.load_balancer_class is None
    assert switched.spec.external_traffic_policy is None
    assert switched.spec.allocate_load_balancer_node_ports is None
    back = await core.patch_namespaced_service("switch", ns, {"spec": {
        "type": "LoadBalancer", "loadBalancerClass": "other.example/lb"}})
    assert back.spec.load_balancer_class == "other.example/lb"  # set anew, not a change


GOOD_CONDITION = {"type": "vipam.io/IPAllocated", "status": "True", "reason": "Allocated",
                  "message": "192.0.2.1", "lastTransitionTime": "2026-11-21T08:00:00Z"}


async def test_service_conditions_are_stored_as_sent(server: Server, core: CoreV1Api) -> None:
    """kube-apiserver 1.36 does not hold Service status.conditions to the metav1 rules: an
    empty reason, a bad type, duplicates, a missing lastTransitionTime are all stored, the
    missing fields as Go zero values (`lastTransitionTime: null`, which kubernetes-asyncio
    cannot read back). The product must write sound conditions itself (tests hold it to
    devkit.emulator.validation.validate_conditions)."""
    await core.create_namespaced_service(server.ns, lb_service("cond"))
    sloppy = [{"type": "bad type!", "status": "Yes", "reason": "no spaces allowed",
               "observedGeneration": -1},
              {"type": "bad type!", "status": "True", "reason": ""}]
    url = server.url + f"/api/v1/namespaces/{server.ns}/services/cond/status"
    async with server.session() as session, session.patch(
            url, json={"status": {"conditions": sloppy}},
            headers={"Content-Type": "application/merge-patch+json"}) as resp:
        stored = await resp.json()
        assert resp.status == 200, stored
    assert stored["status"]["conditions"] == [
        {"type": "bad type!", "status": "Yes", "reason": "no spaces allowed", "message": "",
         "observedGeneration": -1, "lastTransitionTime": None},
        {"type": "bad type!", "status": "True", "reason": "", "message": "",
         "lastTransitionTime": None}]
    assert validate_conditions(stored["status"]["conditions"], "status.conditions")
    good = {"type": "vipam.io/IPAllocated", "status": "True", "reason": "Allocated",
            "message": "192.0.2.1", "lastTransitionTime": "2026-11-21T08:00:00Z"}
    assert validate_conditions([good], "status.conditions") == []


async def test_wrongly_typed_fields_are_bad_requests(server: Server) -> None:
    """A field of the wrong JSON type fails decoding (400), as in the apiserver's typed
    decoding; nulls are zero values and pass."""
    url = server.url + f"/api/v1/namespaces/{server.ns}/services"
    async with server.session() as session:
        bad = lb_service("typed", ports=[{"port": "eighty"}])
        async with session.post(url, json=bad) as resp:
            status = await resp.json()
            assert resp.status == 400 and status["reason"] == "BadRequest"
            assert status["message"] == (
                'Service in version "v1" cannot be handled as a Service: json: cannot '
                "unmarshal string into Go struct field ServicePort.spec.ports.port of type "
                "int32")
        for field, value, go in (("spec", "x", "Service.spec of type v1.ServiceSpec"),
                                 ("metadata", {"name": "t", "labels": "x"},
                                  "ObjectMeta.metadata.labels of type map[string]string")):
            wrong = lb_service("t")
            wrong[field] = value
            async with session.post(url, json=wrong) as resp:
                message = (await resp.json())["message"]
                assert resp.status == 400 and message.endswith(
                    f"cannot unmarshal string into Go struct field {go}"), message
        nulls = lb_service("nulls", loadBalancerClass=None)
        nulls["metadata"]["labels"] = None  # type: ignore[index]
        async with session.post(url, json=nulls) as resp:
            created = await resp.json()
            assert resp.status == 201, created
            assert "loadBalancerClass" not in created["spec"]
