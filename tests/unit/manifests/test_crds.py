"""The CustomResourceDefinitions: names from DESIGN.md, structural schemas the API server
accepts, printer columns that point at real fields, and status in the shape controllers write."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccm.health.numbers import family_usage
from tests.prereq import require
from tests.unit.manifests import schema as crdschema
from tests.unit.manifests.render import Manifest, of_kind
from tests.unit.manifests.walk import Schema, at, nodes

KINDS = {
    # kind: (plural, short name)
    "IPPool": ("ippools", "ipp"),
    "L2Advertisement": ("l2advertisements", "l2adv"),
    "BGPPeer": ("bgppeers", "bgpp"),
    "BGPAdvertisement": ("bgpadvertisements", "bgpadv"),
}
PRINTER_TYPES = {"integer", "number", "string", "boolean", "date"}
# Keys a node may carry instead of `type` in a structural schema.
UNTYPED_ALLOWED = {"x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields"}


def crds(install: tuple[Manifest, ...]) -> dict[str, Manifest]:
    return {
        crd["spec"]["names"]["kind"]: crd for crd in of_kind(install, "CustomResourceDefinition")
    }


def only_version(crd: Manifest) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    result: dict[str, Any] = version
    return result


def test_every_kind_is_defined_once_with_the_names_from_design(
    install: tuple[Manifest, ...],
) -> None:
    defined = crds(install)
    assert set(defined) == set(KINDS)
    assert len(of_kind(install, "CustomResourceDefinition")) == len(KINDS)
    for kind, (plural, short) in KINDS.items():
        spec = defined[kind]["spec"]
        assert defined[kind]["metadata"]["name"] == f"{plural}.vipam.io"
        assert spec["group"] == "vipam.io"
        assert spec["scope"] == "Cluster", f"{kind} must be cluster-scoped"
        assert spec["names"]["plural"] == plural
        assert spec["names"]["singular"] == kind.lower()
        assert spec["names"]["listKind"] == f"{kind}List"
        assert short in spec["names"]["shortNames"]
        version = only_version(defined[kind])
        assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
        assert version["subresources"] == {"status": {}}, f"{kind} needs the status subresource"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_schema_is_structural(install: tuple[Manifest, ...], kind: str) -> None:
    """What the API server demands of a v1 CRD: every node typed, arrays with items, no
    properties next to additionalProperties, required names that exist, metadata left alone."""
    root = crdschema.served_schema(crds(install)[kind])
    for path, node in nodes(root):
        assert "type" in node or UNTYPED_ALLOWED & set(node), f"{kind} {path}: no type"
        assert "$ref" not in node, f"{kind} {path}: $ref is not allowed in a CRD"
        if node.get("type") == "array":
            assert isinstance(node.get("items"), dict), f"{kind} {path}: array without items"
        if "properties" in node:
            assert "additionalProperties" not in node, f"{kind} {path}: properties and a map"
            missing = set(node.get("required", [])) - set(node["properties"])
            assert not missing, f"{kind} {path}: required {missing} not among the properties"
        for rule in node.get("x-kubernetes-validations", []):
            assert rule.get("rule") and rule.get("message"), f"{kind} {path}: rule needs a message"
    assert root["properties"]["metadata"] == {"type": "object"}
    assert (
        root["properties"]["apiVersion"]["type"] == root["properties"]["kind"]["type"] == "string"
    )


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_lists_and_strings_are_bounded(install: tuple[Manifest, ...], kind: str) -> None:
    """The API server estimates the cost of CEL rules from maxItems/maxLength and refuses a
    CRD whose rules could run unbounded; bounds also keep etcd objects small."""
    root = crdschema.served_schema(crds(install)[kind])
    for top in ("spec", "status"):
        for path, node in nodes(root["properties"][top], top):
            if node.get("type") == "array":
                assert "maxItems" in node, f"{kind} {path}: array without maxItems"
            if node.get("type") == "string" and "enum" not in node and "format" not in node:
                assert "maxLength" in node, f"{kind} {path}: string without maxLength"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_printer_columns_point_at_fields_of_their_type(
    install: tuple[Manifest, ...], kind: str
) -> None:
    crd = crds(install)[kind]
    root = crdschema.served_schema(crd)
    columns = only_version(crd)["additionalPrinterColumns"]
    names = [column["name"] for column in columns]
    assert len(names) == len(set(names)), f"{kind}: duplicate column names"
    assert names[-2:] == ["Ready", "Age"], f"{kind}: Ready and Age belong last"
    for column in columns:
        assert column["type"] in PRINTER_TYPES, column
        path = column["jsonPath"]
        if path == ".metadata.creationTimestamp":
            assert column["type"] == "date"
            continue
        # Simple paths, plus the one filter kubectl users know: conditions by type.
        match = re.fullmatch(
            r"((?:\.[A-Za-z0-9]+)+)(?:\[\?\(@\.type==\"(\w+)\"\)\]((?:\.\w+)+))?", path
        )
        assert match, f"{kind}: column {column['name']} has an unsupported JSONPath {path}"
        field = at(root, match.group(1)[1:])
        if match.group(2):
            assert field["type"] == "array" and match.group(2) == "Ready"
            field = at(field["items"], match.group(3)[1:])
        expected = {
            "integer": {"integer"},
            "number": {"number", "integer"},
            "boolean": {"boolean"},
            "string": {"string", "array"},
            "date": {"string"},
        }[column["type"]]
        assert field["type"] in expected, (
            f"{kind}: {column['name']} is {column['type']} over {field['type']}"
        )


def condition_item(root: Schema) -> Schema:
    conditions = at(root, "status.conditions")
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item: Schema = conditions["items"]
    return item


def test_conditions_have_the_metav1_condition_shape_everywhere(
    install: tuple[Manifest, ...],
) -> None:
    items = [condition_item(crdschema.served_schema(crd)) for crd in crds(install).values()]
    first = items[0]
    assert set(first["required"]) == {"type", "status", "lastTransitionTime", "reason", "message"}
    assert first["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert first["properties"]["lastTransitionTime"]["format"] == "date-time"
    assert first["properties"]["observedGeneration"]["type"] == "integer"
    reason = re.compile(first["properties"]["reason"]["pattern"])
    assert reason.match("IPAllocated") and reason.match("PoolOverlap")
    assert not reason.match("not a reason")
    assert all(item == first for item in items), "condition schemas differ between CRDs"


def test_label_selectors_are_the_same_everywhere(install: tuple[Manifest, ...]) -> None:
    """The selector schema is copied into several CRDs; copies must not drift apart."""
    selectors = [
        (f"{kind}{path}", node)
        for kind, crd in crds(install).items()
        for path, node in nodes(crdschema.served_schema(crd))
        if set(node.get("properties", {})) == {"matchLabels", "matchExpressions"}
    ]
    where = {path for path, _ in selectors}
    assert where >= {
        "IPPool.spec.serviceAllocation.namespaceSelector",
        "IPPool.spec.serviceAllocation.serviceSelector",
        "L2Advertisement.spec.ipPoolSelectors[]",
        "L2Advertisement.spec.nodeSelectors[]",
        "BGPPeer.spec.nodeSelectors[]",
        "BGPAdvertisement.spec.ipPoolSelectors[]",
        "BGPAdvertisement.spec.nodeSelectors[]",
    }
    first = selectors[0][1]
    assert at(first, "matchExpressions.[].operator")["enum"] == [
        "In",
        "NotIn",
        "Exists",
        "DoesNotExist",
    ]
    assert first["properties"]["matchLabels"]["additionalProperties"]["type"] == "string"
    assert all(node == first for _, node in selectors)


def test_ippool_spec_has_exactly_the_fields_of_the_contract(install: tuple[Manifest, ...]) -> None:
    root = crdschema.served_schema(crds(install)["IPPool"])
    spec = at(root, "spec")
    assert set(spec["properties"]) == {
        "addresses",
        "exclude",
        "autoAssign",
        "avoidBuggyIPs",
        "priority",
        "disabled",
        "serviceAllocation",
        "external",
    }
    assert spec["properties"]["autoAssign"]["default"] is True
    assert spec["properties"]["avoidBuggyIPs"]["default"] is False
    assert spec["properties"]["disabled"]["default"] is False
    assert "default" not in spec["properties"]["priority"], "unset priority means last"
    assert spec["properties"]["priority"]["minimum"] == 0
    assert set(at(spec, "serviceAllocation")["properties"]) == {
        "namespaces",
        "namespaceSelector",
        "serviceSelector",
    }
    external = at(spec, "external")
    assert set(external["properties"]) == {
        "provider",
        "url",
        "secretRef",
        "caBundle",
        "timeoutSeconds",
        "options",
    }
    assert external["properties"]["provider"]["enum"] == ["http", "netbox"]
    assert external["properties"]["options"]["x-kubernetes-preserve-unknown-fields"] is True
    timeout = external["properties"]["timeoutSeconds"]
    assert (
        timeout["type"],
        timeout["exclusiveMinimum"],
        timeout["minimum"],
        timeout["maximum"],
    ) == ("number", True, 0, 300)
    secret_ref = at(external, "secretRef")
    assert set(secret_ref["properties"]) == {"name", "namespace", "key"}
    assert (
        secret_ref["required"] == ["name"] and secret_ref["properties"]["key"]["default"] == "token"
    )
    assert timeout["default"] == 5


def test_ippool_status_counts_are_strings(install: tuple[Manifest, ...]) -> None:
    """IPv6 pools hold more than 2**63 addresses: an int64 field would overflow."""
    root = crdschema.served_schema(crds(install)["IPPool"])
    for family in ("ipv4", "ipv6"):
        usage = at(root, f"status.{family}")
        assert set(usage["properties"]) == {"capacity", "allocated", "available",
                                             "capacityReadable", "allocatedPercent"}
        for name in ("capacity", "allocated", "available"):
            field = usage["properties"][name]
            assert field["type"] == "string"
            assert re.fullmatch(field["pattern"], str(2**128))
            assert len(str(2**128)) <= field["maxLength"]


@given(st.integers(1, 2**128).flatmap(lambda whole: st.tuples(st.integers(0, whole),
                                                              st.just(whole))))
def test_the_readable_status_fields_fit_their_schema(
    ippool_usage_schema: Schema, pair: tuple[int, int]
) -> None:
    """What ccm.health.numbers writes for any pool is what the CRD admits (the API server
    would refuse the controller's status write otherwise)."""
    allocated, capacity = pair
    usage = family_usage(capacity, allocated, capacity - allocated)
    for name, value in usage.items():
        field = ippool_usage_schema["properties"][name]
        assert re.fullmatch(field["pattern"], value), (name, value)
        assert len(value) <= field["maxLength"], (name, value)


@pytest.fixture(scope="module")
def ippool_usage_schema(install: tuple[Manifest, ...]) -> Schema:
    return at(crdschema.served_schema(crds(install)["IPPool"]), "status.ipv4")


def test_bgp_fields(install: tuple[Manifest, ...]) -> None:
    peer = at(crdschema.served_schema(crds(install)["BGPPeer"]), "spec")
    for asn in ("asn", "localASN"):
        assert (peer["properties"][asn]["minimum"], peer["properties"][asn]["maximum"]) == (
            1,
            2**32 - 1,
        )
    assert peer["properties"]["port"]["default"] == 179
    assert peer["properties"]["ebgpMultiHop"]["type"] == "boolean"
    assert set(peer["properties"]["passwordSecretRef"]["properties"]) == {
        "name",
        "namespace",
        "key",
    }
    adv = at(crdschema.served_schema(crds(install)["BGPAdvertisement"]), "spec")
    assert adv["properties"]["aggregationLength"]["default"] == 32
    assert adv["properties"]["aggregationLengthV6"]["default"] == 128
    require(crdschema.cel_available(), "cel-python is not installed")
    community = at(adv, "communities.[]")
    for good in ("65000:100", "65535:65535", "4200000000:1:2", "4294967295:0:4294967295"):
        assert crdschema.cel_errors(good, community) == [], good
    for bad in ("65000", "no-export:1", "65536:100", "1:65536", "4294967296:1:2", "1:2:3:4", ""):
        assert crdschema.cel_errors(bad, community) != [], bad


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_defaults_satisfy_their_own_schema(install: tuple[Manifest, ...], kind: str) -> None:
    """The API server rejects a CRD whose default would fail its own field's validation."""
    require(crdschema.jsonschema_available(), "jsonschema is not installed")
    root = crdschema.served_schema(crds(install)[kind])
    defaults = [(path, node) for path, node in nodes(root) if "default" in node]
    for path, node in defaults:
        assert crdschema.validate(node["default"], node) == [], f"{kind} {path}"
    if kind != "L2Advertisement":
        assert defaults, f"{kind}: expected defaults"
