"""Our CRDs' validation as the real kube-apiserver applies it: structural schemas (types,
bounds, enums, patterns, required fields, list maps, defaults) and the CEL rules that cel-python
can only approximate offline (tests/unit/manifests). The samples are accepted and defaulted;
each bad object is refused with the field and the message the rule states.

The IP/CIDR rules of IPPool and BGPPeer (CEL's ip() and cidr() library) are tested with their
messages elsewhere (their own tests); here addresses are only ever valid ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devkit.apiserver import ApiServer
from tests.realkube import VIPAM_KINDS, resource_path, unique

SAMPLES = Path(__file__).resolve().parents[3] / "config" / "samples"
KIND_PLURALS = {"IPPool": "ippools", "L2Advertisement": "l2advertisements",
                "BGPPeer": "bgppeers", "BGPAdvertisement": "bgpadvertisements"}
SELECTOR_RULE = "In and NotIn need values; Exists and DoesNotExist take none"


@pytest.fixture(scope="module")
def server(apiserver: ApiServer) -> Iterator[ApiServer]:
    """The session's server; what this module creates is deleted when it ends."""
    yield apiserver
    for plural in VIPAM_KINDS:
        apiserver.request("DELETE", f"/apis/vipam.io/v1alpha1/{plural}")


def post(server: ApiServer, kind: str, spec: Any, **extra: Any) -> tuple[int, dict[str, Any]]:
    body = {"apiVersion": "vipam.io/v1alpha1", "kind": kind,
            "metadata": {"name": unique(kind.lower())}, **extra}
    if spec is not None:
        body["spec"] = spec
    status, raw = server.request("POST", resource_path(KIND_PLURALS[kind]), body)
    return status, json.loads(raw)


def causes(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c.get("field", ""), c.get("message", ""))
            for c in (answer.get("details") or {}).get("causes") or []]


def sample_objects() -> list[dict[str, Any]]:
    return [doc for path in sorted(SAMPLES.glob("*.yaml")) if path.name != "kustomization.yaml"
            for doc in yaml.safe_load_all(path.read_text())
            if isinstance(doc, dict) and doc.get("kind") in KIND_PLURALS]


def test_samples_are_accepted_and_defaulted(server: ApiServer) -> None:
    objects = sample_objects()
    assert {o["kind"] for o in objects} == set(KIND_PLURALS)
    for obj in objects:
        status, created = post(server, obj["kind"], obj["spec"])
        assert status == 201, (obj["metadata"]["name"], created)
        spec = created["spec"]
        if obj["kind"] == "IPPool":
            assert spec["autoAssign"] is obj["spec"].get("autoAssign", True)
            assert spec["disabled"] is False
            assert spec["avoidBuggyIPs"] is obj["spec"].get("avoidBuggyIPs", False)
            if "external" in spec:
                assert spec["external"]["timeoutSeconds"] == obj["spec"]["external"].get(
                    "timeoutSeconds", 5)
        elif obj["kind"] == "BGPPeer":
            assert (spec["port"], spec["ebgpMultiHop"], spec["holdTime"]) == (179, False, "90s")
        elif obj["kind"] == "BGPAdvertisement":
            assert (spec["aggregationLength"], spec["aggregationLengthV6"]) == (32, 128)


def test_defaults_of_a_minimal_object(server: ApiServer) -> None:
    status, pool = post(server, "IPPool", {"external": {
        "provider": "http", "url": "https://ipam.example", "secretRef": {"name": "t"}}})
    assert status == 201, pool
    assert pool["spec"]["external"]["secretRef"] == {"name": "t", "key": "token"}
    assert pool["spec"]["external"]["timeoutSeconds"] == 5
    assert (pool["spec"]["autoAssign"], pool["spec"]["disabled"],
            pool["spec"]["avoidBuggyIPs"]) == (True, False, False)
    status, peer = post(server, "BGPPeer", {"address": "192.0.2.1", "asn": 64512,
                                            "localASN": 64512})
    assert status == 201, peer
    assert (peer["spec"]["port"], peer["spec"]["holdTime"]) == (179, "90s")


V4 = ["192.0.2.0/24"]
EXPR = "spec.serviceAllocation.serviceSelector.matchExpressions[0]"


@pytest.mark.parametrize(("kind", "spec", "field", "message"), [
    # IPPool: CEL rules on spec
    ("IPPool", {}, "spec",
     "Invalid value: a pool needs spec.addresses unless spec.external names an IPAM"),
    ("IPPool", {"addresses": []}, "spec",
     "Invalid value: a pool needs spec.addresses unless spec.external names an IPAM"),
    ("IPPool", {"addresses": V4, "external": {"provider": "http", "url": "https://x"}}, "spec",
     "Invalid value: spec.addresses and spec.external are exclusive; an external pool takes "
     "its addresses from the IPAM"),
    # IPPool: label selectors (CEL on each expression, enum on the operator)
    ("IPPool", {"addresses": V4, "serviceAllocation": {"serviceSelector": {
        "matchExpressions": [{"key": "app", "operator": "In"}]}}}, EXPR,
     f"Invalid value: {SELECTOR_RULE}"),
    ("IPPool", {"addresses": V4, "serviceAllocation": {"namespaceSelector": {
        "matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]}}},
     "spec.serviceAllocation.namespaceSelector.matchExpressions[0]",
     f"Invalid value: {SELECTOR_RULE}"),
    ("IPPool", {"addresses": V4, "serviceAllocation": {"serviceSelector": {
        "matchExpressions": [{"key": "app", "operator": "Near"}]}}}, f"{EXPR}.operator",
     'Unsupported value: "Near": supported values: "In", "NotIn", "Exists", "DoesNotExist"'),
    ("IPPool", {"addresses": V4, "serviceAllocation": {"namespaces": ["Bad_NS"]}},
     "spec.serviceAllocation.namespaces[0]", "should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'"),
    # IPPool: bounds, enums, patterns, required
    ("IPPool", {"addresses": V4, "priority": -1}, "spec.priority",
     "should be greater than or equal to 0"),
    ("IPPool", {"external": {"provider": "infoblox", "url": "https://x"}},
     "spec.external.provider", 'Unsupported value: "infoblox": supported values: "http", '
                               '"netbox"'),
    ("IPPool", {"external": {"provider": "http", "url": "ftp://x"}}, "spec.external.url",
     "should match '^https?://'"),
    ("IPPool", {"external": {"provider": "http"}}, "spec.external.url", "Required value"),
    ("IPPool", {"external": {"provider": "http", "url": "https://x", "timeoutSeconds": 0}},
     "spec.external.timeoutSeconds", "should be greater than 0"),
    ("IPPool", {"external": {"provider": "http", "url": "https://x", "timeoutSeconds": 301}},
     "spec.external.timeoutSeconds", "should be less than or equal to 300"),
    ("IPPool", {"external": {"provider": "http", "url": "https://x",
                             "secretRef": {"name": ""}}},
     "spec.external.secretRef.name", "should be at least 1 chars long"),
    ("IPPool", None, "spec", "Required value"),
    # BGPPeer: the hold-time CEL rule (RFC 4271), bounds, required fields, selectors
    ("BGPPeer", {"address": "192.0.2.1", "asn": 1, "localASN": 1, "holdTime": "2s"},
     "spec.holdTime", 'Invalid value: "2s": holdTime must be 0s or between 3s and 65535s'),
    ("BGPPeer", {"address": "192.0.2.1", "asn": 1, "localASN": 1, "holdTime": "19h"},
     "spec.holdTime", 'Invalid value: "19h": holdTime must be 0s or between 3s and 65535s'),
    ("BGPPeer", {"address": "192.0.2.1", "asn": 1, "localASN": 1, "holdTime": "90"},
     "spec.holdTime", "should match"),
    ("BGPPeer", {"address": "192.0.2.1", "asn": 0, "localASN": 1}, "spec.asn",
     "should be greater than or equal to 1"),
    ("BGPPeer", {"address": "192.0.2.1", "asn": 4294967296, "localASN": 1}, "spec.asn",
     "should be less than or equal to 4294967295"),
    ("BGPPeer", {"address": "192.0.2.1", "asn": 1, "localASN": 1, "port": 0}, "spec.port",
     "should be greater than or equal to 1"),
    ("BGPPeer", {"address": "192.0.2.1", "asn": 1}, "spec.localASN", "Required value"),
    ("BGPPeer", {"address": "192.0.2.1", "asn": 1, "localASN": 1,
                 "passwordSecretRef": {"name": "s"}}, "spec.passwordSecretRef.key",
     "Required value"),
    ("BGPPeer", {"address": "192.0.2.1", "asn": 1, "localASN": 1, "nodeSelectors": [
        {"matchExpressions": [{"key": "a", "operator": "NotIn"}]}]},
     "spec.nodeSelectors[0].matchExpressions[0]", f"Invalid value: {SELECTOR_RULE}"),
    # BGPAdvertisement
    ("BGPAdvertisement", {"localPref": -1}, "spec.localPref",
     "should be greater than or equal to 0"),
    ("BGPAdvertisement", {"aggregationLength": 33}, "spec.aggregationLength",
     "should be less than or equal to 32"),
    ("BGPAdvertisement", {"aggregationLengthV6": 129}, "spec.aggregationLengthV6",
     "should be less than or equal to 128"),
    ("BGPAdvertisement", {"ipPoolSelectors": [{"matchExpressions": [
        {"key": "a", "operator": "DoesNotExist", "values": ["b"]}]}]},
     "spec.ipPoolSelectors[0].matchExpressions[0]", f"Invalid value: {SELECTOR_RULE}"),
    # L2Advertisement
    ("L2Advertisement", {"interfaces": ["eth/0"]}, "spec.interfaces[0]",
     "should match '^[^/\\s:]+$'"),
    ("L2Advertisement", {"interfaces": ["a-much-too-long-name"]}, "spec.interfaces[0]",
     "may not be more than 15 bytes"),
    ("L2Advertisement", {"nodeSelectors": [{"matchExpressions": [
        {"key": "a", "operator": "In", "values": []}]}]},
     "spec.nodeSelectors[0].matchExpressions[0]", f"Invalid value: {SELECTOR_RULE}"),
], ids=lambda value: None)
def test_bad_objects_are_refused(server: ApiServer, kind: str, spec: Any, field: str,
                                 message: str) -> None:
    status, answer = post(server, kind, spec)
    assert status == 422 and answer["reason"] == "Invalid", answer
    assert any(f == field and message in m for f, m in causes(answer)), causes(answer)


@pytest.mark.parametrize(("status", "field", "message"), [
    ({"ipv4": {"capacity": "many"}}, "status.ipv4.capacity", "should match '^[0-9]+$'"),
    ({"conditions": [
        {"type": "Ready", "status": "True", "reason": "Ok", "message": "",
         "lastTransitionTime": "2026-11-21T08:00:00Z"},
        {"type": "Ready", "status": "False", "reason": "Ok", "message": "",
         "lastTransitionTime": "2026-11-21T08:00:00Z"}]},
     "status.conditions[1]", "Duplicate value"),
    ({"conditions": [{"type": "Ready", "status": "Yes", "reason": "Ok", "message": "",
                      "lastTransitionTime": "2026-11-21T08:00:00Z"}]},
     "status.conditions[0].status", 'Unsupported value: "Yes"'),
    ({"conditions": [{"type": "Ready", "status": "True", "message": "",
                      "lastTransitionTime": "2026-11-21T08:00:00Z"}]},
     "status.conditions[0].reason", "Required value"),
    ({"conditions": [{"type": "Ready", "status": "True", "reason": "no spaces", "message": "",
                      "lastTransitionTime": "2026-11-21T08:00:00Z"}]},
     "status.conditions[0].reason", "should match"),
])
def test_pool_status_is_validated_on_status_writes(server: ApiServer, status: dict[str, Any],
                                                   field: str, message: str) -> None:
    """The controller's own writes are held to the schema: counts as digit strings, conditions
    in the metav1 shape, one per type (a list map)."""
    code, pool = post(server, "IPPool", {"addresses": V4})
    assert code == 201, pool
    code, answer = server.request(
        "PATCH", resource_path("ippools", None, pool["metadata"]["name"]) + "/status",
        {"status": status}, content_type="application/merge-patch+json")
    body = json.loads(answer)
    assert code == 422, body
    assert any(f == field and message in m for f, m in causes(body)), causes(body)
