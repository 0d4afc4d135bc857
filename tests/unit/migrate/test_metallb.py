"""MetalLB objects: every field with a vipam equivalent is carried, every other one reported."""

from __future__ import annotations

import pytest

from tests.unit.migrate.helpers import errors, lost, metallb, migrate, noted, schema_problems, spec


def peer(name: str = "peer1", **fields: object) -> dict[str, object]:
    base: dict[str, object] = {"myASN": 64500, "peerASN": 64501, "peerAddress": "192.0.2.254"}
    base.update(fields)
    return metallb("BGPPeer", name, base, version="v1beta2")


# --- IPAddressPool ----------------------------------------------------------------------


def test_pool_addresses_flags_and_labels_are_carried() -> None:
    out = migrate(metallb("IPAddressPool", "lan", {
        "addresses": ["192.0.2.0/25", "192.0.2.200 - 192.0.2.250", "2001:DB8:1::/64",
                      "198.51.100.7/32", "203.0.113.9"],
        "autoAssign": False,
        "avoidBuggyIPs": True,
    }, labels={"zone": "a"}))
    assert spec(out, "IPPool", "lan") == {
        "addresses": ["192.0.2.0/25", "192.0.2.200-192.0.2.250", "2001:db8:1::/64",
                      "198.51.100.7/32", "203.0.113.9/32"],
        "autoAssign": False,
        "avoidBuggyIPs": True,
    }
    meta = out.objects[("IPPool", "lan")]["metadata"]
    assert meta["labels"] == {"zone": "a"}
    assert meta["annotations"]["vipam.io/migrated-from"] == (
        "metallb.io/v1beta1 IPAddressPool metallb-system/lan"
    )
    assert lost(out) == [] and errors(out) == []
    assert schema_problems(out) == []


def test_defaults_are_not_written() -> None:
    out = migrate(metallb("IPAddressPool", "p", {
        "addresses": ["192.0.2.0/24"], "autoAssign": True, "avoidBuggyIPs": False,
    }))
    assert spec(out, "IPPool", "p") == {"addresses": ["192.0.2.0/24"]}


def test_host_bits_are_masked_as_metallb_does_and_noted() -> None:
    out = migrate(metallb("IPAddressPool", "p", {"addresses": ["192.0.2.77/24"]}))
    assert spec(out, "IPPool", "p")["addresses"] == ["192.0.2.0/24"]
    assert noted(out) == [
        "IPAddressPool/p: spec.addresses[0]: '192.0.2.77/24' has host bits set; written as "
        "'192.0.2.0/24' (the network it covers)"
    ]


@pytest.mark.parametrize("bad", ["192.0.2.300/24", "nonsense", "192.0.2.9-192.0.2.1",
                                 "192.0.2.1-2001:db8::1", ""])
def test_an_address_that_is_not_one_is_an_error(bad: str) -> None:
    out = migrate(metallb("IPAddressPool", "p", {"addresses": ["192.0.2.0/28", bad]}))
    assert any(e.startswith("IPAddressPool/p: spec.addresses[1]:") for e in errors(out))


def test_service_allocation_is_carried_with_its_priority() -> None:
    out = migrate(metallb("IPAddressPool", "gold", {
        "addresses": ["198.51.100.0/28"],
        "serviceAllocation": {
            "priority": 5,
            "namespaces": ["shop", "web"],
            "namespaceSelectors": [{"matchLabels": {"tier": "gold"}}],
            "serviceSelectors": [{"matchExpressions": [
                {"key": "app", "operator": "In", "values": ["api"]}]}],
        },
    }))
    assert spec(out, "IPPool", "gold") == {
        "addresses": ["198.51.100.0/28"],
        "serviceAllocation": {
            "namespaces": ["shop", "web"],
            "namespaceSelector": {"matchLabels": {"tier": "gold"}},
            "serviceSelector": {"matchExpressions": [
                {"key": "app", "operator": "In", "values": ["api"]}]},
        },
        "priority": 5,
    }
    assert lost(out) == [] and noted(out) == []
    assert schema_problems(out) == []


def test_selectors_on_one_key_are_united_into_one() -> None:
    out = migrate(metallb("IPAddressPool", "p", {
        "addresses": ["192.0.2.0/28"],
        "serviceAllocation": {"priority": 1, "serviceSelectors": [
            {"matchLabels": {"tier": "gold"}},
            {"matchExpressions": [{"key": "tier", "operator": "In",
                                   "values": ["platinum", "gold"]}]},
        ]},
    }))
    assert spec(out, "IPPool", "p")["serviceAllocation"] == {"serviceSelector": {
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold", "platinum"]}],
    }}
    assert lost(out) == []


def test_selectors_that_do_not_combine_keep_the_first_and_are_reported() -> None:
    out = migrate(metallb("IPAddressPool", "p", {
        "addresses": ["192.0.2.0/28"],
        "serviceAllocation": {"priority": 1, "namespaceSelectors": [
            {"matchLabels": {"team": "a"}}, {"matchLabels": {"env": "prod"}},
        ]},
    }))
    assert spec(out, "IPPool", "p")["serviceAllocation"] == {
        "namespaceSelector": {"matchLabels": {"team": "a"}}}
    assert lost(out) == [
        "IPAddressPool/p: spec.serviceAllocation.namespaceSelectors[1:]: vipam's pool takes one "
        "namespaceSelector and these 2 selectors do not combine into one; kept "
        "namespaceSelectors[0] only (the pool now admits fewer Services)"
    ]


def test_pinned_pools_without_priority_come_after_explicit_priorities() -> None:
    out = migrate(
        metallb("IPAddressPool", "a", {"addresses": ["192.0.2.0/28"],
                                       "serviceAllocation": {"priority": 7,
                                                             "namespaces": ["x"]}}),
        metallb("IPAddressPool", "b", {"addresses": ["192.0.2.16/28"],
                                       "serviceAllocation": {"namespaces": ["y"]}}),
        metallb("IPAddressPool", "c", {"addresses": ["192.0.2.32/28"]}),
    )
    assert spec(out, "IPPool", "a")["priority"] == 7
    assert spec(out, "IPPool", "b")["priority"] == 8
    assert "priority" not in spec(out, "IPPool", "c")  # unpinned: tried last, as in MetalLB
    assert noted(out) == [
        "IPAddressPool/b: spec.serviceAllocation.priority: unset; MetalLB tries pools with a "
        "serviceAllocation before pools without one, so the pool gets priority 8 (after every "
        "explicit priority)"
    ]


def test_an_allocation_naming_nobody_means_never_chosen_automatically() -> None:
    out = migrate(metallb("IPAddressPool", "p", {
        "addresses": ["192.0.2.0/28"], "serviceAllocation": {"priority": 3},
    }))
    assert spec(out, "IPPool", "p") == {"addresses": ["192.0.2.0/28"], "autoAssign": False}
    assert len(noted(out)) == 1 and "written as autoAssign: false" in noted(out)[0]


def test_unknown_fields_are_reported_not_dropped_silently() -> None:
    out = migrate(metallb("IPAddressPool", "p", {
        "addresses": ["192.0.2.0/28"], "futureKnob": "on", "zeroKnob": False,
        "serviceAllocation": {"priority": 1, "namespaces": ["a"], "weight": 3},
    }))
    assert lost(out) == [
        "IPAddressPool/p: spec.serviceAllocation.weight: vipam migrate does not know this "
        "field; not carried",
        "IPAddressPool/p: spec.futureKnob: vipam migrate does not know this field; not carried",
    ]


# --- L2Advertisement --------------------------------------------------------------------


def test_l2_advertisement_fields_are_carried() -> None:
    out = migrate(
        metallb("IPAddressPool", "lan", {"addresses": ["192.0.2.0/28"]}),
        metallb("L2Advertisement", "l2", {
            "ipAddressPools": ["lan"],
            "ipAddressPoolSelectors": [{"matchLabels": {"zone": "a"}}],
            "nodeSelectors": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1", "n2"]}]}],
            "interfaces": ["eth0", "bond0.100"],
        }, labels={"team": "net"}),
    )
    assert spec(out, "L2Advertisement", "l2") == {
        "ipPools": ["lan"],
        "ipPoolSelectors": [{"matchLabels": {"zone": "a"}}],
        "nodeSelectors": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1", "n2"]}]}],
        "interfaces": ["eth0", "bond0.100"],
    }
    assert out.objects[("L2Advertisement", "l2")]["metadata"]["labels"] == {"team": "net"}
    assert lost(out) == [] and noted(out) == [] and errors(out) == []
    assert schema_problems(out) == []


def test_empty_l2_advertisement_announces_every_pool() -> None:
    out = migrate(metallb("L2Advertisement", "all"))
    assert spec(out, "L2Advertisement", "all") == {}


def test_interface_names_vipam_refuses_are_reported() -> None:
    out = migrate(metallb("L2Advertisement", "l2", {"interfaces": ["eth0", "a-very-long-name0",
                                                                   "eth0:1"]}))
    assert spec(out, "L2Advertisement", "l2") == {"interfaces": ["eth0"]}
    assert lost(out) == [
        "L2Advertisement/l2: spec.interfaces[1]: 'a-very-long-name0' is not an interface name "
        "vipam accepts; dropped",
        "L2Advertisement/l2: spec.interfaces[2]: 'eth0:1' is not an interface name vipam "
        "accepts; dropped",
    ]


def test_a_pool_name_not_among_the_inputs_is_an_error() -> None:
    out = migrate(metallb("L2Advertisement", "l2", {"ipAddressPools": ["elsewhere"]}))
    assert errors(out) == ["L2Advertisement/l2: spec: names pool 'elsewhere', which is not among "
                           "the inputs: give its source object too"]


def test_node_selectors_vipam_cannot_express_are_reported() -> None:
    gt = {"matchExpressions": [{"key": "rack", "operator": "Gt", "values": ["3"]}]}
    rack = {"matchLabels": {"rack": "r1"}}
    out = migrate(metallb("L2Advertisement", "some", {"nodeSelectors": [rack, gt]}),
                  metallb("L2Advertisement", "only", {"nodeSelectors": [gt]}))
    assert spec(out, "L2Advertisement", "some") == {"nodeSelectors": [rack]}
    assert spec(out, "L2Advertisement", "only") == {}
    assert lost(out) == [
        "L2Advertisement/some: spec.nodeSelectors[1]: operator Gt: vipam's selectors have In, "
        "NotIn, Exists and DoesNotExist only; selector dropped",
        "L2Advertisement/only: spec.nodeSelectors[0]: operator Gt: vipam's selectors have In, "
        "NotIn, Exists and DoesNotExist only; selector dropped",
        "L2Advertisement/only: spec.nodeSelectors: no selector left, which means everything: it "
        "now applies to all",
    ]


def test_an_invalid_selector_is_an_error() -> None:
    out = migrate(metallb("L2Advertisement", "l2", {"nodeSelectors": [
        {"matchExpressions": [{"key": "a", "operator": "Like", "values": ["x"]}]}]}))
    assert errors(out) and errors(out)[0].startswith("L2Advertisement/l2: spec.nodeSelectors[0]:")


# --- BGPAdvertisement and Community -----------------------------------------------------


def test_bgp_advertisement_fields_and_community_aliases_are_carried() -> None:
    out = migrate(
        metallb("IPAddressPool", "lan", {"addresses": ["192.0.2.0/28"]}),
        peer(name="tor1"), peer(name="tor2", peerAddress="192.0.2.253"),
        metallb("Community", "aliases", {"communities": [
            {"name": "no-advertise", "value": "65535:65282"},
            {"name": "big", "value": "large:64512:1:2"},
        ]}),
        metallb("BGPAdvertisement", "adv", {
            "aggregationLength": 28,
            "aggregationLengthV6": 120,
            "localPref": 250,
            "communities": ["64512:100", "large:64512:7:8", "no-advertise", "big"],
            "ipAddressPools": ["lan"],
            "ipAddressPoolSelectors": [{"matchLabels": {"bgp": "yes"}}],
            "nodeSelectors": [{"matchLabels": {"rack": "r1"}}],
            "peers": ["tor1", "tor2"],
        }),
    )
    assert spec(out, "BGPAdvertisement", "adv") == {
        "ipPools": ["lan"],
        "ipPoolSelectors": [{"matchLabels": {"bgp": "yes"}}],
        "nodeSelectors": [{"matchLabels": {"rack": "r1"}}],
        "peers": ["tor1", "tor2"],
        "communities": ["64512:100", "64512:7:8", "65535:65282", "64512:1:2"],
        "localPref": 250,
        "aggregationLength": 28,
        "aggregationLengthV6": 120,
    }
    assert lost(out) == [] and errors(out) == []
    assert ("Community", "aliases") not in {(k, n) for k, n in out.objects}  # nothing of its own
    assert schema_problems(out) == []


def test_bgp_advertisement_defaults_are_not_written() -> None:
    out = migrate(metallb("BGPAdvertisement", "adv", {
        "aggregationLength": 32, "aggregationLengthV6": 128, "localPref": 0}))
    assert spec(out, "BGPAdvertisement", "adv") == {}


def test_an_unknown_community_alias_is_an_error() -> None:
    out = migrate(metallb("BGPAdvertisement", "adv", {"communities": ["gold-customers"]}))
    assert errors(out) == [
        "BGPAdvertisement/adv: spec.communities[0]: 'gold-customers' is not a BGP community; "
        "nor the name of an alias in a Community object"
    ]


# --- BGPPeer ----------------------------------------------------------------------------


def test_peer_fields_are_carried() -> None:
    out = migrate(peer(
        peerAddress="2001:DB8::FE", sourceAddress="2001:db8::10", peerPort=1179,
        holdTime="3m", keepaliveTime="1m", ebgpMultiHop=True, disableMP=True,
        nodeSelectors=[{"matchLabels": {"rack": "r1"}}],
        passwordSecret={"name": "bgp-pass", "namespace": "metallb-system"},
    ))
    assert spec(out, "BGPPeer", "peer1") == {
        "localASN": 64500, "asn": 64501, "address": "2001:db8::fe",
        "sourceAddress": "2001:db8::10", "port": 1179, "holdTime": "180s",
        "nodeSelectors": [{"matchLabels": {"rack": "r1"}}],
        "passwordSecretRef": {"name": "bgp-pass", "key": "password"},
        "ebgpMultiHop": True,
    }
    assert lost(out) == [] and errors(out) == []
    assert noted(out) == [
        "BGPPeer/peer1: spec.passwordSecret: the speaker reads Secrets only in its own namespace "
        "(kube-system by default): copy Secret metallb-system/bgp-pass (key 'password') there"
    ]
    assert schema_problems(out) == []


def test_peer_defaults_are_not_written() -> None:
    out = migrate(peer(peerPort=179, holdTime="90s", keepaliveTime="30s", ebgpMultiHop=False,
                       passwordSecret={}, bfdProfile="", vrf="", enableGracefulRestart=False))
    assert spec(out, "BGPPeer", "peer1") == {"localASN": 64500, "asn": 64501,
                                             "address": "192.0.2.254"}
    assert lost(out) == [] and noted(out) == []


def test_dynamic_internal_asn_is_the_local_asn() -> None:
    out = migrate(metallb("BGPPeer", "ibgp", {"myASN": 64500, "dynamicASN": "internal",
                                              "peerAddress": "192.0.2.1"}, version="v1beta2"))
    assert spec(out, "BGPPeer", "ibgp")["asn"] == 64500
    assert lost(out) == []


LOSSES: list[tuple[dict[str, object], str]] = [
    ({"bfdProfile": "fast"}, "spec.bfdProfile: vipam has no BFD; dropped"),
    ({"vrf": "red"}, "spec.vrf: vipam has no VRFs: the session would open in the default VRF; "
                     "dropped"),
    ({"enableGracefulRestart": True},
     "spec.enableGracefulRestart: vipam's speaker has no BGP graceful restart; dropped"),
    ({"routerID": "10.0.0.1"}, "spec.routerID: a per-peer router ID has no field in vipam; set "
                               "the speaker's --bgp-router-id instead; dropped"),
    ({"connectTime": "5s"}, "spec.connectTime: vipam has no connect-retry timer; dropped"),
    ({"password": "s3cret"}, "spec.password: vipam reads a peer's password from a Secret only: "
                             "create one with key 'password' and set spec.passwordSecretRef; "
                             "dropped"),
    ({"holdTime": "90s", "keepaliveTime": "10s"},
     "spec.keepaliveTime: vipam sends keepalives at a third of the hold time and has no "
     "separate keepalive setting; dropped"),
    ({"dualStackAddressFamily": True},
     "spec.dualStackAddressFamily: vipam announces each family only to peers of that family (no "
     "multiprotocol session); dropped"),
    ({"interface": "eth1"}, "spec.interface: vipam has no unnumbered BGP (a session over an "
                            "interface); dropped"),
    ({"newThing": {"a": 1}}, "spec.newThing: vipam migrate does not know this field; not carried"),
]


@pytest.mark.parametrize(("extra", "message"), LOSSES, ids=[next(iter(e)) for e, _ in LOSSES])
def test_each_peer_field_vipam_cannot_carry_is_reported(extra: dict[str, object],
                                                         message: str) -> None:
    out = migrate(peer("peer1", **extra))
    assert lost(out) == [f"BGPPeer/peer1: {message}"]
    assert ("BGPPeer", "peer1") in out.objects  # the rest of the peer is still written


def test_dynamic_external_asn_cannot_be_written() -> None:
    out = migrate(metallb("BGPPeer", "ebgp", {"myASN": 64500, "dynamicASN": "external",
                                              "peerAddress": "192.0.2.1"}, version="v1beta2"))
    assert lost(out) == [
        "BGPPeer/ebgp: spec.dynamicASN: 'external': vipam needs the peer's AS number; set "
        "spec.asn by hand",
        "BGPPeer/ebgp: not written: vipam's BGPPeer needs address, asn and localASN",
    ]
    assert ("BGPPeer", "ebgp") not in out.objects


def test_an_advertisement_to_peers_that_were_not_written_is_not_written() -> None:
    external = {"myASN": 64500, "dynamicASN": "external", "peerAddress": "192.0.2.1"}
    out = migrate(
        metallb("BGPPeer", "ebgp", external, version="v1beta2"), peer("ibgp"),
        metallb("BGPAdvertisement", "only-ebgp", {"peers": ["ebgp"]}),
        metallb("BGPAdvertisement", "both", {"peers": ["ebgp", "ibgp"]}),
    )
    assert ("BGPAdvertisement", "only-ebgp") not in out.objects
    assert spec(out, "BGPAdvertisement", "both") == {"peers": ["ibgp"]}
    assert "BGPAdvertisement/only-ebgp: spec.peers: none of its peers could be written, and " \
           "without peers it would go to every peer; not written" in lost(out)
    assert noted(out) == ["BGPAdvertisement/both: spec.peers: peers that could not be written "
                          "were taken out"]


@pytest.mark.parametrize(("field", "value"), [("myASN", 0), ("peerASN", 2**32),
                                              ("peerAddress", "router.example"),
                                              ("holdTime", "2s"), ("holdTime", "ninety")])
def test_invalid_peer_values_are_errors(field: str, value: object) -> None:
    out = migrate(peer("peer1", **{field: value}))
    assert errors(out), out.report


def test_a_session_that_carried_both_families_is_reported() -> None:
    out = migrate(
        metallb("IPAddressPool", "dual", {"addresses": ["192.0.2.0/28", "2001:db8::/120"]}),
        metallb("BGPAdvertisement", "adv", {"ipAddressPools": ["dual"]}),
        peer(),
    )
    assert lost(out) == [
        "BGPPeer/peer1: spec.disableMP: the session to this IPv4 peer also carried the IPv6 "
        "addresses of dual; vipam announces IPv6 only to IPv6 peers: add a BGPPeer for the "
        "router's IPv6 address"
    ]
    separate = migrate(
        metallb("IPAddressPool", "dual", {"addresses": ["192.0.2.0/28", "2001:db8::/120"]}),
        metallb("BGPAdvertisement", "adv", {"ipAddressPools": ["dual"]}),
        peer(disableMP=True),
    )
    assert lost(separate) == []


def test_two_advertisements_of_one_pool_to_different_peers_are_reported() -> None:
    out = migrate(
        metallb("IPAddressPool", "lan", {"addresses": ["192.0.2.0/28"]}),
        metallb("BGPAdvertisement", "a", {"ipAddressPools": ["lan"], "peers": ["tor1"]}),
        metallb("BGPAdvertisement", "b", {"ipAddressPools": ["lan"], "peers": ["tor2"],
                                          "communities": ["64512:1"]}),
    )
    assert lost(out) == [
        "BGPAdvertisement/b: spec: BGPAdvertisement/a and BGPAdvertisement/b both announce lan "
        "with different peers or attributes; vipam's speaker applies one BGPAdvertisement to an "
        "address, so one of them is not carried out: merge them"
    ]


# --- other kinds ------------------------------------------------------------------------


def test_bfd_profiles_are_reported_and_status_kinds_ignored() -> None:
    out = migrate(metallb("BFDProfile", "fast", {"receiveInterval": 300}),
                  metallb("ServiceL2Status", "s"), metallb("IPAddressPool", "p",
                                                           {"addresses": ["192.0.2.0/28"]}))
    assert lost(out) == ["BFDProfile/fast: vipam has no BFD; not converted"]


def test_two_sources_with_one_name_are_an_error() -> None:
    first = metallb("IPAddressPool", "p", {"addresses": ["192.0.2.0/28"]})
    second = metallb("IPAddressPool", "p", {"addresses": ["192.0.2.16/28"]})
    second["metadata"]["namespace"] = "other"
    out = migrate(first, second)
    assert errors(out) == ["IPAddressPool/p: metadata.name: IPPool/p would also be written for "
                           "IPAddressPool/p; rename one"]


def test_overlapping_pools_are_an_error_since_vipam_check_refuses_them() -> None:
    out = migrate(metallb("IPAddressPool", "a", {"addresses": ["192.0.2.0/24"]}),
                  metallb("IPAddressPool", "b", {"addresses": ["192.0.2.128/25"]}))
    assert errors(out) == [
        "IPPool/a: spec.addresses: overlaps IPPool/b (192.0.2.128/25); vipam never merges "
        "pools: make the source pools disjoint first"
    ]
