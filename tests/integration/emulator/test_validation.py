"""The validation a controller relies on: Service fields and CRD schemas (with pruning and
defaulting, as a real apiserver does them)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio.client import ApiException, CoreV1Api, CustomObjectsApi

from tests.integration.emulator.conftest import lb_service, reason, status_body, widget

WIDGETS = ("example.test", "v1", "default", "widgets")


async def expect_invalid(call: Any, field: str) -> None:
    with pytest.raises(ApiException) as caught:
        await call
    assert caught.value.status == 422 and reason(caught.value) == "Invalid"
    causes = status_body(caught.value)["details"]["causes"]  # type: ignore[index]
    assert field in [c["field"] for c in causes], causes


async def test_service_type_enum(core: CoreV1Api) -> None:
    await expect_invalid(core.create_namespaced_service("default", lb_service(
        "bad", type="Loadbalancer")), "spec.type")


async def test_service_ports_required_and_ranged(core: CoreV1Api) -> None:
    await expect_invalid(core.create_namespaced_service("default", lb_service(
        "noports", ports=[])), "spec.ports")
    await expect_invalid(core.create_namespaced_service("default", lb_service(
        "big", ports=[{"port": 70000}])), "spec.ports[0].port")


async def test_service_name_must_be_dns_label(core: CoreV1Api) -> None:
    await expect_invalid(core.create_namespaced_service("default", lb_service("Bad_Name")),
                         "metadata.name")


async def test_load_balancer_class_is_immutable_once_set(core: CoreV1Api) -> None:
    await core.create_namespaced_service("default", lb_service(
        "cls", loadBalancerClass="vipam.io/vipam"))
    await expect_invalid(core.patch_namespaced_service("cls", "default", {"spec": {
        "loadBalancerClass": "other.example/lb"}}), "spec.loadBalancerClass")
    await core.create_namespaced_service("default", lb_service("nocls"))
    await expect_invalid(core.patch_namespaced_service("nocls", "default", {"spec": {
        "loadBalancerClass": "vipam.io/vipam"}}), "spec.loadBalancerClass")
    unchanged = await core.patch_namespaced_service("cls", "default", {"metadata": {
        "labels": {"a": "b"}}})
    assert unchanged.spec.load_balancer_class == "vipam.io/vipam"


async def test_load_balancer_class_only_on_load_balancers(core: CoreV1Api) -> None:
    await expect_invalid(core.create_namespaced_service("default", lb_service(
        "cip", type="ClusterIP", loadBalancerClass="vipam.io/vipam")), "spec.loadBalancerClass")


@pytest.mark.parametrize("address", ["192.0.2.300", "not-an-ip", "2001:db8::zz"])
async def test_ingress_ips_must_be_valid(core: CoreV1Api, address: str) -> None:
    await core.create_namespaced_service("default", lb_service("ing"))
    await expect_invalid(core.patch_namespaced_service_status("ing", "default", {"status": {
        "loadBalancer": {"ingress": [{"ip": address}]}}}), "status.loadBalancer.ingress[0].ip")


async def test_ingress_ip_mode_enum(core: CoreV1Api) -> None:
    await core.create_namespaced_service("default", lb_service("mode"))
    await expect_invalid(core.patch_namespaced_service_status("mode", "default", {"status": {
        "loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ipMode": "Direct"}]}}}),
        "status.loadBalancer.ingress[0].ipMode")
    ok = await core.patch_namespaced_service_status("mode", "default", {"status": {
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
    ({"color": "red", "weight": 2**31}, "spec.weight"),  # format: int32
    ({"size": 2}, "spec.color"),                      # required
])
async def test_custom_resource_schema(custom: CustomObjectsApi, spec: dict[str, Any],
                                      field: str) -> None:
    body = widget("w")
    body["spec"] = spec
    await expect_invalid(custom.create_namespaced_custom_object(*WIDGETS, body), field)


async def test_custom_resource_required_top_level(custom: CustomObjectsApi) -> None:
    body = widget("nospec")
    del body["spec"]
    await expect_invalid(custom.create_namespaced_custom_object(*WIDGETS, body), "spec")


async def test_schema_defaults_and_pruning(custom: CustomObjectsApi) -> None:
    body = widget("pd", code="ABC-12", unknown="dropped", extra={"free": {"form": 1}})
    body["topLevelJunk"] = True
    created = await custom.create_namespaced_custom_object(*WIDGETS, body)
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
async def test_status_is_validated_on_status_writes(custom: CustomObjectsApi,
                                                    conditions: list[Any], field: str) -> None:
    await custom.create_namespaced_custom_object(*WIDGETS, widget("sv"))
    await expect_invalid(custom.patch_namespaced_custom_object_status(
        *WIDGETS, "sv", {"status": {"conditions": conditions}},
        _content_type="application/merge-patch+json"), field)


async def test_valid_conditions_and_formats_pass(custom: CustomObjectsApi) -> None:
    await custom.create_namespaced_custom_object(*WIDGETS, widget("ok", weight=2**31 - 1))
    patched = await custom.patch_namespaced_custom_object_status(
        *WIDGETS, "ok", {"status": {"conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-21T08:00:00Z",
             "observedGeneration": 1},
            {"type": "Other", "status": "False",
             "lastTransitionTime": "2026-11-21T08:00:00.5+01:00"}]}},
        _content_type="application/merge-patch+json")
    assert [c["type"] for c in patched["status"]["conditions"]] == ["Ready", "Other"]


async def test_wrong_kind_is_bad_request(core: CoreV1Api) -> None:
    body = lb_service("k")
    body["kind"] = "ConfigMap"
    with pytest.raises(ApiException) as caught:
        await core.create_namespaced_service("default", body)
    assert caught.value.status == 400 and reason(caught.value) == "BadRequest"


async def test_field_validation_strict_rejects_unknown_fields(emulator: Any) -> None:
    body = widget("strict", colour="red")
    url = emulator.url + "/apis/example.test/v1/namespaces/default/widgets"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body, params={"fieldValidation": "Strict"}) as resp:
            status = await resp.json()
            assert resp.status == 400 and status["reason"] == "BadRequest"
            assert 'unknown field "spec.colour"' in status["message"]
        async with session.post(url, json=body) as resp:  # default Warn: pruned, with a warning
            assert resp.status == 201
            assert resp.headers["Warning"] == "299 - \"unknown field 'spec.colour'\""
            assert "colour" not in (await resp.json())["spec"]


async def test_leaving_load_balancer_drops_its_fields(core: CoreV1Api) -> None:
    await core.create_namespaced_service("default", lb_service(
        "switch", loadBalancerClass="vipam.io/vipam"))
    switched = await core.patch_namespaced_service("switch", "default", {"spec": {
        "type": "ClusterIP"}})
    assert switched.spec.type == "ClusterIP"
    assert switched.spec.load_balancer_class is None
    assert switched.spec.external_traffic_policy is None
    assert switched.spec.allocate_load_balancer_node_ports is None
    back = await core.patch_namespaced_service("switch", "default", {"spec": {
        "type": "LoadBalancer", "loadBalancerClass": "other.example/lb"}})
    assert back.spec.load_balancer_class == "other.example/lb"  # set anew, not a change


GOOD_CONDITION = {"type": "vipam.io/IPAllocated", "status": "True", "reason": "Allocated",
                  "message": "192.0.2.1", "lastTransitionTime": "2026-11-21T08:00:00Z"}


@pytest.mark.parametrize(("change", "field"), [
    ({"reason": ""}, "status.conditions[0].reason"),
    ({"reason": "no spaces allowed"}, "status.conditions[0].reason"),
    ({"status": "Yes"}, "status.conditions[0].status"),
    ({"lastTransitionTime": None}, "status.conditions[0].lastTransitionTime"),
    ({"type": "bad type!"}, "status.conditions[0].type"),
    ({"observedGeneration": -1}, "status.conditions[0].observedGeneration"),
])
async def test_service_conditions_follow_metav1_rules(core: CoreV1Api, change: dict[str, Any],
                                                      field: str) -> None:
    await core.create_namespaced_service("default", lb_service("cond"))
    condition = {k: v for k, v in {**GOOD_CONDITION, **change}.items() if v is not None}
    await expect_invalid(core.patch_namespaced_service_status("cond", "default", {"status": {
        "conditions": [condition]}}), field)


async def test_service_condition_types_are_unique(core: CoreV1Api) -> None:
    await core.create_namespaced_service("default", lb_service("dupcond"))
    ok = await core.patch_namespaced_service_status("dupcond", "default", {"status": {
        "conditions": [GOOD_CONDITION]}})
    assert [c.type for c in ok.status.conditions] == ["vipam.io/IPAllocated"]
    svc = await core.read_namespaced_service("dupcond", "default")
    body = core.api_client.sanitize_for_serialization(svc)
    body["status"]["conditions"].append({**GOOD_CONDITION, "status": "False"})
    await expect_invalid(core.replace_namespaced_service_status("dupcond", "default", body),
                         "status.conditions[1].type")


async def test_wrongly_typed_fields_are_bad_requests(emulator: Any) -> None:
    """A field of the wrong JSON type fails decoding (400), as in the apiserver's typed
    decoding; nulls are zero values and pass."""
    url = emulator.url + "/api/v1/namespaces/default/services"
    async with aiohttp.ClientSession() as session:
        bad = lb_service("typed", ports=[{"port": "eighty"}])
        async with session.post(url, json=bad) as resp:
            status = await resp.json()
            assert resp.status == 400 and status["reason"] == "BadRequest"
            assert "spec.ports[0].port" in status["message"]
        nulls = lb_service("nulls", loadBalancerClass=None)
        nulls["metadata"]["labels"] = None  # type: ignore[index]
        async with session.post(url, json=nulls) as resp:
            created = await resp.json()
            assert resp.status == 201, created
            assert "loadBalancerClass" not in created["spec"]
