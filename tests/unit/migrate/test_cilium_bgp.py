"""Cilium's BGP control plane, v1 (CiliumBGPPeeringPolicy) and v2 (cluster/peer config and
advertisements)."""

from __future__ import annotations

from typing import Any

from tests.unit.migrate.helpers import (
    cilium,
    errors,
    lost,
    migrate,
    noted,
    schema_problems,
    service,
    spec,
)

POLICY = "CiliumBGPPeeringPolicy"
EVERYTHING = {"matchExpressions": [{"key": "somekey", "operator": "NotIn",
                                    "values": ["never-used-value"]}]}


def pool(name: str, cidr: str, **labels: str) -> dict[str, Any]:
    return cilium("CiliumLoadBalancerIPPool", name,
                  {"blocks": [{"cidr": cidr}], "allowFirstLastIPs": "Yes"}, labels=labels)


def policy(neighbors: list[dict[str, Any]], **router: Any) -> dict[str, Any]:
    vr: dict[str, Any] = {"localASN": 64512, "serviceSelector": {}, "neighbors": neighbors}
    vr.update(router)
    return cilium(POLICY, "rack1", {"nodeSelector": {"matchLabels": {"rack": "r1"}},
                                    "virtualRouters": [vr]})


NEIGHBOR = {"peerAddress": "192.0.2.254/32", "peerASN": 64513, "families": [
    {"afi": "ipv4", "safi": "unicast"}]}


def test_v1_neighbours_become_peers_and_the_router_an_advertisement() -> None:
    out = migrate(pool("blue", "203.0.113.0/26"), policy([
        {**NEIGHBOR, "peerPort": 1179, "holdTimeSeconds": 30, "keepAliveTimeSeconds": 10,
         "eBGPMultihopTTL": 4, "authSecretRef": "bgp-auth", "connectRetryTimeSeconds": 120},
        {"peerAddress": "2001:db8::fe/128", "peerASN": 64514,
         "families": [{"afi": "ipv6", "safi": "unicast"}]},
    ]))
    assert spec(out, "BGPPeer", "rack1-192.0.2.254") == {
        "address": "192.0.2.254", "asn": 64513, "localASN": 64512, "port": 1179,
        "holdTime": "30s", "ebgpMultiHop": True,
        "passwordSecretRef": {"name": "bgp-auth", "key": "password"},
        "nodeSelectors": [{"matchLabels": {"rack": "r1"}}],
    }
    assert spec(out, "BGPPeer", "rack1-2001-db8--fe")["address"] == "2001:db8::fe"
    assert spec(out, "BGPAdvertisement", "rack1-0") == {
        "peers": ["rack1-192.0.2.254", "rack1-2001-db8--fe"],
        "nodeSelectors": [{"matchLabels": {"rack": "r1"}}],
    }
    assert lost(out) == [] and errors(out) == []
    assert schema_problems(out) == []


def test_v1_router_without_service_selector_announces_nothing() -> None:
    out = migrate(cilium(POLICY, "quiet", {"virtualRouters": [
        {"localASN": 64512, "neighbors": [NEIGHBOR]}]}))
    assert ("BGPPeer", "quiet-192.0.2.254") in out.objects
    assert out.of_kind("BGPAdvertisement") == []
    assert "no BGPAdvertisement written" in noted(out)[0]


def test_v1_service_selectors_are_losses_unless_they_exclude_nobody() -> None:
    labelled = migrate(policy([NEIGHBOR], serviceSelector={"matchLabels": {"bgp": "yes"}}))
    assert lost(labelled)[0].startswith(
        f"{POLICY}/rack1: spec.virtualRouters[0].serviceSelector: vipam announces the Services of "
        "the pools an advertisement selects, not Services chosen by label; dropped (give the "
        "Services too")
    # the documented announce-everything idiom, with the Services at hand: nothing is excluded
    idiom = migrate(policy([NEIGHBOR], serviceSelector=EVERYTHING),
                    service("web", ["203.0.113.5"]))
    assert [line for line in lost(idiom) if "serviceSelector" in line] == []
    excluded = migrate(policy([NEIGHBOR], serviceSelector=EVERYTHING),
                       service("odd", [], labels={"somekey": "never-used-value"}))
    assert any("serviceSelector: vipam announces" in line for line in lost(excluded))
    # Cilium's namespace pseudo-label is no Service label: it may exclude Services
    by_namespace = {"matchExpressions": [{"key": "io.kubernetes.service.namespace",
                                          "operator": "NotIn", "values": ["kube-system"]}]}
    assert any("serviceSelector: vipam announces" in line for line in lost(
        migrate(policy([NEIGHBOR], serviceSelector=by_namespace), service("web", []))))
    # read live with no Service at all: nothing to exclude either
    assert [line for line in lost(migrate(policy([NEIGHBOR], serviceSelector=EVERYTHING),
                                          services_listed=True))
            if "serviceSelector" in line] == []


def test_v1_path_attributes_split_the_pools_they_select() -> None:
    out = migrate(pool("blue", "203.0.113.0/26", color="blue"), pool("red", "203.0.113.64/26"),
                  policy([{**NEIGHBOR, "advertisedPathAttributes": [{
                      "selectorType": "CiliumLoadBalancerIPPool",
                      "selector": {"matchLabels": {"color": "blue"}},
                      "communities": {"standard": ["64512:100", "4259840101"],
                                      "wellKnown": ["no-export"], "large": ["64512:1:2"]},
                      "localPreference": 150,
                  }]}]))
    common = {"peers": ["rack1-192.0.2.254"], "nodeSelectors": [{"matchLabels": {"rack": "r1"}}]}
    assert spec(out, "BGPAdvertisement", "rack1-0-0") == {
        **common, "ipPools": ["blue"],
        "communities": ["64512:100", "65000:101", "65535:65281", "64512:1:2"], "localPref": 150,
    }
    assert spec(out, "BGPAdvertisement", "rack1-0") == {**common, "ipPools": ["red"]}
    assert lost(out) == []
    assert schema_problems(out) == []


def test_v1_losses_are_reported() -> None:
    out = migrate(policy([{**NEIGHBOR, "keepAliveTimeSeconds": 5, "connectRetryTimeSeconds": 10,
                           "gracefulRestart": {"enabled": True, "restartTimeSeconds": 60},
                           "families": [{"afi": "l2vpn", "safi": "evpn"}],
                           "advertisedPathAttributes": [{"selectorType": "PodCIDR"}]}],
                         exportPodCIDR=True, serviceAdvertisements=["LoadBalancerIP", "ClusterIP"]))
    at = f"{POLICY}/rack1: spec.virtualRouters[0]"
    assert lost(out) == [
        f"{at}.exportPodCIDR: vipam announces Service addresses only, not pod CIDRs; dropped",
        f"{at}.serviceAdvertisements[1]: ClusterIP: vipam announces LoadBalancer addresses only; "
        "dropped",
        f"{at}.neighbors[0]: keepalive 5s: vipam sends keepalives at a third of the hold time; "
        "dropped",
        f"{at}.neighbors[0]: connect retry 10s: vipam has no connect-retry timer; dropped",
        f"{at}.neighbors[0].gracefulRestart.enabled: vipam's speaker has no BGP graceful restart; "
        "dropped",
        f"{at}.neighbors[0].families[0]: l2vpn/evpn: vipam announces IPv4 and IPv6 unicast routes "
        "only; dropped",
        f"{at}.neighbors[0].advertisedPathAttributes[0]: PodCIDR: vipam announces no pod "
        "addresses; dropped",
    ]


def test_v1_default_families_are_one_multiprotocol_session() -> None:
    out = migrate(pool("v6", "2001:db8:5::/120"),
                  policy([{"peerAddress": "192.0.2.254/32", "peerASN": 64513}]))
    assert lost(out) == [
        f"{POLICY}/rack1: spec.virtualRouters[0].neighbors[0].families: the session to this IPv4 "
        "peer also carried the IPv6 addresses of v6; vipam announces IPv6 only to IPv6 peers: add "
        "a BGPPeer for the router's IPv6 address"
    ]


def test_v1_peer_address_must_be_one_host() -> None:
    out = migrate(policy([{**NEIGHBOR, "peerAddress": "192.0.2.0/24"}]))
    assert errors(out) == [f"{POLICY}/rack1: spec.virtualRouters[0].neighbors[0]: "
                           "'192.0.2.0/24' is not a single host (/32 or /128)"]


# --- v2 ---------------------------------------------------------------------------------


def v2_objects(advert: dict[str, Any] | None = None,
               peer_config: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    advert = advert if advert is not None else {"advertisements": [{
        "advertisementType": "Service",
        "service": {"addresses": ["LoadBalancerIP"]},
        "attributes": {"communities": {"standard": ["65000:99"]}, "localPreference": 120},
    }]}
    return [
        cilium("CiliumBGPClusterConfig", "cluster", {
            "nodeSelector": {"matchLabels": {"bgp": "on"}},
            "bgpInstances": [{"name": "65000", "localASN": 65000, "peers": [
                {"name": "tor-a", "peerAddress": "192.0.2.1", "peerASN": 65001,
                 "peerConfigRef": {"name": "tor"}},
                {"name": "tor-b", "peerAddress": "192.0.2.2", "peerASN": 65001,
                 "peerConfigRef": {"name": "tor"}},
            ]}],
        }, version="v2"),
        cilium("CiliumBGPPeerConfig", "tor", peer_config if peer_config is not None else {
            "transport": {"peerPort": 179},
            "timers": {"holdTimeSeconds": 9, "keepAliveTimeSeconds": 3},
            "authSecretRef": "tor-auth",
            "ebgpMultihop": 1,
            "families": [{"afi": "ipv4", "safi": "unicast",
                          "advertisements": {"matchLabels": {"advertise": "bgp"}}}],
        }, version="v2"),
        cilium("CiliumBGPAdvertisement", "services", advert, version="v2",
               labels={"advertise": "bgp"}),
    ]


def test_v2_peers_take_their_peer_config_and_adverts_become_one_advertisement() -> None:
    out = migrate(*v2_objects())
    common = {"localASN": 65000, "asn": 65001, "holdTime": "9s",
              "passwordSecretRef": {"name": "tor-auth", "key": "password"},
              "nodeSelectors": [{"matchLabels": {"bgp": "on"}}]}
    assert spec(out, "BGPPeer", "cluster-65000-tor-a") == {"address": "192.0.2.1", **common}
    assert spec(out, "BGPPeer", "cluster-65000-tor-b") == {"address": "192.0.2.2", **common}
    assert spec(out, "BGPAdvertisement", "cluster-65000") == {
        "peers": ["cluster-65000-tor-a", "cluster-65000-tor-b"],
        "communities": ["65000:99"], "localPref": 120,
        "nodeSelectors": [{"matchLabels": {"bgp": "on"}}],
    }
    assert lost(out) == [] and errors(out) == []
    assert schema_problems(out) == []


def test_v2_losses_are_reported() -> None:
    out = migrate(*v2_objects(
        advert={"advertisements": [
            {"advertisementType": "PodCIDR"},
            {"advertisementType": "Service", "service": {"addresses": ["LoadBalancerIP",
                                                                      "ExternalIP"]},
             "selector": {"matchLabels": {"expose": "bgp"}}},
        ]},
        peer_config={"transport": {"localPort": 1790}, "gracefulRestart": {"enabled": True},
                     "timers": {"connectRetryTimeSeconds": 5},
                     "families": [{"afi": "ipv4", "safi": "unicast",
                                   "advertisements": {"matchLabels": {"advertise": "bgp"}}}]},
    ))
    assert lost(out) == [
        "CiliumBGPAdvertisement/services: spec.advertisements[0]: PodCIDR: vipam announces "
        "Service addresses only; dropped",
        "CiliumBGPAdvertisement/services: spec.advertisements[1].service.addresses[1]: ExternalIP: "
        "vipam announces LoadBalancer addresses only; dropped",
        "CiliumBGPAdvertisement/services: spec.advertisements[1].selector: vipam announces the "
        "Services of the pools an advertisement selects, not Services chosen by label; dropped "
        "(give the Services too, or read them live, to check whether it excludes any)",
        "CiliumBGPPeerConfig/tor: spec: connect retry 5s: vipam has no connect-retry timer; "
        "dropped",
        "CiliumBGPPeerConfig/tor: spec.transport.localPort: vipam's speaker connects from a port "
        "the kernel picks; dropped",
        "CiliumBGPPeerConfig/tor: spec.gracefulRestart.enabled: vipam's speaker has no BGP "
        "graceful restart; dropped",
    ]


def test_v2_peer_config_without_families_announces_nothing() -> None:
    out = migrate(pool("v6", "2001:db8:6::/120"), *v2_objects(peer_config={}))
    assert out.of_kind("BGPAdvertisement") == []
    assert "CiliumBGPPeerConfig/tor: spec.families: no family selects an advertisement" in (
        " ".join(noted(out)))
    assert "CiliumBGPAdvertisement/services: no peer uses it; nothing written" in noted(out)


def test_v2_missing_peer_config_is_an_error() -> None:
    objects = v2_objects()
    out = migrate(objects[0], objects[2])
    assert errors(out)[0].startswith("CiliumBGPClusterConfig/cluster: "
                                     "spec.bgpInstances[0].peers[0].peerConfigRef: no "
                                     "CiliumBGPPeerConfig 'tor'")
