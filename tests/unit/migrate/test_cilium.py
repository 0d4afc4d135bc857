"""Cilium LB-IPAM pools and L2 announcement policies."""

from __future__ import annotations

import pytest

from tests.unit.migrate.helpers import cilium, errors, lost, migrate, noted, schema_problems, spec

POOL = "CiliumLoadBalancerIPPool"
L2 = "CiliumL2AnnouncementPolicy"


def test_blocks_ranges_single_addresses_disabled_and_labels_are_carried() -> None:
    out = migrate(cilium(POOL, "blue", {
        "blocks": [{"cidr": "203.0.113.0/26"}, {"cidr": "2001:db8:2::/120"},
                   {"start": "203.0.113.100", "stop": "203.0.113.120"},
                   {"start": "203.0.113.200"}],
        "allowFirstLastIPs": "Yes",
        "disabled": True,
    }, labels={"color": "blue"}))
    assert spec(out, "IPPool", "blue") == {
        "addresses": ["203.0.113.0/26", "2001:db8:2::/120", "203.0.113.100-203.0.113.120",
                      "203.0.113.200/32"],
        "disabled": True,
    }
    assert out.objects[("IPPool", "blue")]["metadata"]["labels"] == {"color": "blue"}
    assert lost(out) == [] and noted(out) == [] and errors(out) == []
    assert schema_problems(out) == []


def test_reserved_first_and_last_addresses_become_excludes() -> None:
    out = migrate(cilium(POOL, "p", {
        "blocks": [{"cidr": "192.0.2.0/28"}, {"cidr": "192.0.2.32/31"}, {"cidr": "2001:db8::/126"},
                   {"start": "192.0.2.64", "stop": "192.0.2.70"}],
        "allowFirstLastIPs": "No",
    }))
    assert spec(out, "IPPool", "p") == {
        "addresses": ["192.0.2.0/28", "192.0.2.32/31", "2001:db8::/126", "192.0.2.64-192.0.2.70"],
        # a /31 keeps both addresses (Cilium ignores the setting there); ranges reserve nothing
        "exclude": ["192.0.2.0", "192.0.2.15", "2001:db8::", "2001:db8::3"],
    }
    assert noted(out) == []
    assert schema_problems(out) == []


def test_unset_first_last_follows_the_cilium_version_the_fields_reveal() -> None:
    current = migrate(cilium(POOL, "new", {"blocks": [{"cidr": "192.0.2.0/28"}]}))
    assert "exclude" not in spec(current, "IPPool", "new")
    assert noted(current)[0].startswith(
        f"{POOL}/new: spec.allowFirstLastIPs: unset: Cilium 1.16 and later hand out")
    legacy = migrate(cilium(POOL, "old", {"cidrs": [{"cidr": "192.0.2.0/28"}]}))
    assert spec(legacy, "IPPool", "old") == {"addresses": ["192.0.2.0/28"],
                                             "exclude": ["192.0.2.0", "192.0.2.15"]}
    assert "spec.cidrs (Cilium 1.15 or older)" in noted(legacy)[0]


def test_namespace_pseudo_label_becomes_namespaces() -> None:
    out = migrate(cilium(POOL, "p", {
        "blocks": [{"cidr": "192.0.2.0/28"}], "allowFirstLastIPs": "Yes",
        "serviceSelector": {
            "matchLabels": {"io.kubernetes.service.namespace": "tenant-a", "app": "web"},
            "matchExpressions": [
                {"key": "io.kubernetes.service.namespace", "operator": "In",
                 "values": ["tenant-a", "tenant-b"]},
                {"key": "tier", "operator": "NotIn", "values": ["batch"]},
            ],
        },
    }))
    assert spec(out, "IPPool", "p")["serviceAllocation"] == {
        "namespaces": ["tenant-a"],
        "serviceSelector": {"matchLabels": {"app": "web"},
                            "matchExpressions": [{"key": "tier", "operator": "NotIn",
                                                  "values": ["batch"]}]},
    }
    assert lost(out) == []


@pytest.mark.parametrize(("selector", "where"), [
    ({"matchLabels": {"io.kubernetes.service.name": "web"}},
     "matchLabels[io.kubernetes.service.name]"),
    ({"matchExpressions": [{"key": "io.kubernetes.service.namespace", "operator": "NotIn",
                            "values": ["kube-system"]}]}, "matchExpressions[0]"),
])
def test_selecting_what_vipam_cannot_is_reported(selector: dict[str, object], where: str) -> None:
    out = migrate(cilium(POOL, "p", {"blocks": [{"cidr": "192.0.2.0/28"}],
                                     "allowFirstLastIPs": "Yes", "serviceSelector": selector}))
    assert len(lost(out)) == 1
    assert lost(out)[0].startswith(f"{POOL}/p: spec.serviceSelector.{where}: vipam cannot select")
    assert "serviceAllocation" not in spec(out, "IPPool", "p")


@pytest.mark.parametrize("block", [{"cidr": "192.0.2.1"}, {"stop": "192.0.2.9"},
                                   {"start": "192.0.2.9", "stop": "192.0.2.1"}])
def test_broken_blocks_are_errors(block: dict[str, str]) -> None:
    out = migrate(cilium(POOL, "p", {"blocks": [block]}))
    assert any(e.startswith(f"{POOL}/p: spec.blocks[0]") for e in errors(out)), errors(out)


def test_l2_policy_fields_are_carried() -> None:
    out = migrate(cilium(L2, "l2", {
        "nodeSelector": {"matchExpressions": [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"}]},
        "interfaces": ["^eth0$", "^bond0\\.100$"],
        "loadBalancerIPs": True,
        "externalIPs": False,
    }))
    assert spec(out, "L2Advertisement", "l2") == {
        "nodeSelectors": [{"matchExpressions": [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"}]}],
        "interfaces": ["eth0", "bond0.100"],
    }
    assert lost(out) == [] and noted(out) == []
    assert schema_problems(out) == []


def test_l2_policy_losses_are_reported() -> None:
    out = migrate(cilium(L2, "l2", {
        "serviceSelector": {"matchLabels": {"color": "blue"}},
        "interfaces": ["eth0", "^eth[0-9]+"],
        "loadBalancerIPs": True,
        "externalIPs": True,
    }))
    assert lost(out) == [
        f"{L2}/l2: spec.externalIPs: vipam announces LoadBalancer addresses only, not "
        "spec.externalIPs; dropped",
        f"{L2}/l2: spec.serviceSelector: vipam's L2Advertisement selects pools, not Services: the "
        "advertisement announces the Services of every pool; dropped",
        f"{L2}/l2: spec.interfaces[0]: 'eth0' matches every interface whose name contains 'eth0'; "
        "vipam takes exact names: written as 'eth0'",
        f"{L2}/l2: spec.interfaces[1]: '^eth[0-9]+' is a regular expression; vipam takes exact "
        "interface names; dropped",
    ]
    assert spec(out, "L2Advertisement", "l2") == {"interfaces": ["eth0"]}


def test_l2_policy_without_any_interface_left_says_so() -> None:
    out = migrate(cilium(L2, "l2", {"interfaces": ["^en.*"], "loadBalancerIPs": True}))
    assert lost(out)[-1] == (f"{L2}/l2: spec.interfaces: none could be written: the "
                             "advertisement answers on every interface")


def test_policy_announcing_no_loadbalancer_address_writes_nothing() -> None:
    out = migrate(cilium(L2, "ext-only", {"externalIPs": True}))
    assert ("L2Advertisement", "ext-only") not in out.objects
    assert noted(out) == [f"{L2}/ext-only: spec.loadBalancerIPs: not true: the policy announces "
                          "no LoadBalancer address; nothing written"]
    assert len(lost(out)) == 1  # externalIPs


def test_other_cilium_kinds_are_left_alone() -> None:
    out = migrate(cilium("CiliumNetworkPolicy", "deny", {"endpointSelector": {}}),
                  cilium("CiliumBGPNodeConfigOverride", "n1", {"bgpInstances": []}))
    assert lost(out) == [
        "CiliumBGPNodeConfigOverride/n1: per-node BGP settings (router ID, local address, port) "
        "have no vipam object; not converted"
    ]
    assert noted(out) == ["CiliumNetworkPolicy: 1 object(s) ignored: not an LB-IPAM or BGP kind"]
