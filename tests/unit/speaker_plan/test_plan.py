"""The pure announcement plan: selection by pool and node, Local policy, owners, BGP duties."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ccm.contract import names
from ccm.speaker.election import owner
from ccm.speaker.plan import ClusterView, make_plan

LIVE = frozenset({"n1", "n2", "n3"})


def svc(name: str, ips: list[str], pools: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default",
                     "annotations": {names.ANN_ALLOCATED_FROM: pools}},
        "spec": {"type": "LoadBalancer", **spec},
        "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}},
    }


def view(services: list[dict[str, Any]], l2: list[dict[str, Any]] | None = None,
         bgp: list[dict[str, Any]] | None = None, peers: list[dict[str, Any]] | None = None,
         slices: list[dict[str, Any]] | None = None) -> ClusterView:
    return ClusterView(
        services={f"default/{s['metadata']['name']}": s for s in services},
        pools={"a": {"metadata": {"name": "a", "labels": {"zone": "x"}}},
               "b": {"metadata": {"name": "b", "labels": {"zone": "y"}}}},
        l2_advertisements={str(i): {"spec": spec} for i, spec in enumerate(l2 or [])},
        bgp_advertisements={str(i): {"spec": spec} for i, spec in enumerate(bgp or [])},
        peers={p["metadata"]["name"]: p for p in peers or []},
        nodes={n: {"metadata": {"name": n, "labels": {"rack": "r1" if n != "n3" else "r2"}}}
               for n in LIVE},
        endpoint_slices={str(i): s for i, s in enumerate(slices or [])},
    )


def test_one_owner_per_address_by_rendezvous_over_live_nodes() -> None:
    plan = make_plan(view([svc("s", ["192.0.2.1"], "a")], l2=[{}]), "n1", LIVE)
    duty = plan.l2["192.0.2.1"]
    assert duty.owner == owner("192.0.2.1", LIVE) and duty.services == ("default/s",)


def test_pool_selection_by_name_and_by_label() -> None:
    services = [svc("in-a", ["192.0.2.1"], "a"), svc("in-b", ["192.0.2.2"], "b")]
    by_name = make_plan(view(services, l2=[{"ipPools": ["a"]}]), "n1", LIVE)
    by_label = make_plan(view(services, l2=[{"ipPoolSelectors": [
        {"matchLabels": {"zone": "y"}}]}]), "n1", LIVE)
    assert set(by_name.l2) == {"192.0.2.1"}
    assert set(by_label.l2) == {"192.0.2.2"}


def test_node_selectors_and_interfaces() -> None:
    plan = make_plan(view([svc("s", ["192.0.2.1"], "a")], l2=[{
        "nodeSelectors": [{"matchLabels": {"rack": "r2"}}], "interfaces": ["bond0"]}]),
        "n1", LIVE)
    assert plan.l2["192.0.2.1"].owner == "n3"
    assert plan.l2["192.0.2.1"].interfaces == ("bond0",)


def test_no_live_eligible_node_means_no_owner_not_a_crash() -> None:
    plan = make_plan(view([svc("s", ["192.0.2.1"], "a")], l2=[{}]), "n1", frozenset())
    assert plan.l2["192.0.2.1"].owner is None


def test_local_policy_only_nodes_with_ready_endpoints() -> None:
    slices = [{
        "metadata": {"namespace": "default", "labels": {"kubernetes.io/service-name": "s"}},
        "endpoints": [{"nodeName": "n2", "conditions": {"ready": True}},
                      {"nodeName": "n3", "conditions": {"ready": False}}],
    }]
    services = [svc("s", ["192.0.2.1"], "a", externalTrafficPolicy="Local")]
    plan = make_plan(view(services, l2=[{}], bgp=[{}], slices=slices), "n3", LIVE)
    assert plan.l2["192.0.2.1"].owner == "n2"
    assert plan.bgp == {}  # n3 has no ready endpoint
    assert set(make_plan(view(services, bgp=[{}], slices=slices), "n2", LIVE).bgp) == {
        "192.0.2.1"}


def test_bgp_duties_carry_attributes_and_peers_select_nodes() -> None:
    def peer(name: str, address: str, rack: str) -> dict[str, Any]:
        return {"metadata": {"name": name}, "spec": {
            "address": address, "asn": 64512, "localASN": 64512,
            "nodeSelectors": [{"matchLabels": {"rack": rack}}]}}

    peers = [peer("r1-peer", "192.0.2.254", "r1"), peer("r2-peer", "192.0.2.253", "r2")]
    plan = make_plan(view([svc("s", ["192.0.2.1", "2001:db8::1"], "a")], bgp=[{
        "communities": ["64512:100"], "localPref": 200, "peers": ["r1-peer"]}], peers=peers),
        "n1", LIVE)
    assert set(plan.bgp) == {"192.0.2.1", "2001:db8::1"}
    duty = plan.bgp["192.0.2.1"]
    assert duty.communities == ("64512:100",) and duty.local_pref == 200
    assert duty.peers == ("r1-peer",)
    assert [p.name for p in plan.peers] == ["r1-peer"]


def test_other_classes_unannounced_and_unallocated_ignored() -> None:
    other = svc("other", ["192.0.2.1"], "a", loadBalancerClass="example.com/x")
    pending = svc("pending", [], "a")
    no_pool = svc("nopool", ["192.0.2.3"], "")
    plan = make_plan(view([other, pending, no_pool], l2=[{}]), "n1", LIVE)
    assert plan.l2 == {}


def test_dual_stack_from_two_pools_maps_each_address_to_its_pool() -> None:
    services = [svc("d", ["192.0.2.1", "2001:db8::1"], "a,b")]
    plan = make_plan(view(services, l2=[{"ipPools": ["b"]}]), "n1", LIVE)
    assert set(plan.l2) == {"2001:db8::1"}


def test_shared_address_lists_every_service() -> None:
    services = [svc("tcp", ["192.0.2.9"], "a"), svc("udp", ["192.0.2.9"], "a")]
    plan = make_plan(view(services, l2=[{}], bgp=[{}]), "n1", LIVE)
    assert plan.l2["192.0.2.9"].services == ("default/tcp", "default/udp")
    assert plan.bgp["192.0.2.9"].services == ("default/tcp", "default/udp")


# -- the objects are read through the contract models ------------------------------------------


def peer_obj(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": names.API_VERSION, "kind": "BGPPeer", "metadata": {"name": name},
            "spec": {"address": "192.0.2.254", "asn": 64512, "localASN": 64512, **spec}}


def test_any_hold_time_the_crd_accepts_is_understood() -> None:
    peers = [peer_obj("minutes", holdTime="3m"), peer_obj("mixed", holdTime="1m30s"),
             peer_obj("default")]
    plan = make_plan(view([], peers=peers), "n1", LIVE)
    assert plan.invalid == []
    assert {p.name: p.spec.hold_seconds for p in plan.peers} == {
        "minutes": 180, "mixed": 90, "default": 90}


def test_a_refused_peer_is_reported_and_the_others_still_served() -> None:
    peers = [peer_obj("good", holdTime="3m"), peer_obj("bad", holdTime="banana"),
             peer_obj("short", holdTime="2s")]
    plan = make_plan(view([svc("s", ["192.0.2.1"], "a")], l2=[{}], bgp=[{}], peers=peers),
                     "n1", LIVE)
    assert [p.name for p in plan.peers] == ["good"]
    refused = {item.name: item.message for item in plan.invalid}
    assert set(refused) == {"bad", "short"}
    assert "holdTime" in refused["bad"] and "'banana' is not a duration" in refused["bad"]
    assert "between 3s and 65535s" in refused["short"]
    assert set(plan.l2) == {"192.0.2.1"} and set(plan.bgp) == {"192.0.2.1"}


def test_a_refused_advertisement_is_left_out_and_named() -> None:
    services = [svc("s", ["192.0.2.1"], "a")]
    plan = make_plan(view(services, l2=[{"interfaces": ["bad/name"]}, {"ipPools": ["a"]}],
                          bgp=[{"communities": ["notacommunity"]}]), "n1", LIVE)
    assert set(plan.l2) == {"192.0.2.1"} and plan.l2["192.0.2.1"].interfaces == ()
    assert plan.bgp == {}
    assert sorted(item.kind for item in plan.invalid) == ["BGPAdvertisement", "L2Advertisement"]


# -- the cheaper election picks exactly the owner the full ranking picked ----------------------


def reference_owners(v: ClusterView, live: frozenset[str]) -> dict[str, str | None]:
    """The plan's election as it was: rank every eligible node of every address (S x N)."""
    from ccm.contract.models import L2AdvertisementSpec

    ads = [L2AdvertisementSpec.model_validate(a["spec"]) for a in v.l2_advertisements.values()]
    ready: dict[str, set[str]] = {}
    for endpoint_slice in v.endpoint_slices.values():
        service = endpoint_slice["metadata"]["labels"]["kubernetes.io/service-name"]
        ready.setdefault(service, set()).update(
            e["nodeName"] for e in endpoint_slice["endpoints"] if e["conditions"]["ready"])
    owners: dict[str, str | None] = {}
    for service in v.services.values():
        name = service["metadata"]["name"]
        local = service["spec"].get("externalTrafficPolicy") == "Local"
        for ip in (e["ip"] for e in service["status"]["loadBalancer"]["ingress"]):
            candidates: set[str] = set()
            for ad in ads:
                if ad.selects_pool("a", {"zone": "x"}):
                    nodes = {n for n in live
                             if ad.selects_node(v.nodes[n]["metadata"]["labels"])}
                    candidates |= nodes & ready.get(name, set()) if local else nodes
            if any(ad.selects_pool("a", {"zone": "x"}) for ad in ads):
                owners[ip] = owner(ip, candidates)
    return owners


node_sets = st.sets(st.text("abcdefgh0123456789-", min_size=1, max_size=8), min_size=0,
                    max_size=12)
address_lists = st.lists(st.one_of(
    st.ip_addresses(v=4, network="192.0.2.0/24"),
    st.ip_addresses(v=6, network="2001:db8::/32")).map(str), min_size=1, max_size=20, unique=True)


@settings(max_examples=200, deadline=None)
@given(nodes=node_sets, addresses=address_lists, data=st.data())
def test_the_owner_is_the_one_a_full_ranking_elects(
    nodes: set[str], addresses: list[str], data: st.DataObject
) -> None:
    everyone = sorted(nodes | {"me"})
    live = frozenset(data.draw(st.sets(st.sampled_from(everyone))))
    racks = {n: data.draw(st.sampled_from(["r1", "r2"])) for n in everyone}
    ads: list[dict[str, Any]] = data.draw(st.lists(st.sampled_from([
        {}, {"nodeSelectors": [{"matchLabels": {"rack": "r1"}}]},
        {"nodeSelectors": [{"matchLabels": {"rack": "r2"}}], "interfaces": ["eth1"]},
        {"ipPools": ["b"]},  # selects nothing here
    ]), min_size=1, max_size=3))
    services, slices = [], []
    for i, ip in enumerate(addresses):
        local = data.draw(st.booleans())
        services.append(svc(f"s{i}", [ip], "a", **({"externalTrafficPolicy": "Local"}
                                                    if local else {})))
        if local:
            ready = data.draw(st.sets(st.sampled_from(everyone)))
            slices.append({"metadata": {"namespace": "default",
                                        "labels": {"kubernetes.io/service-name": f"s{i}"}},
                           "endpoints": [{"nodeName": n, "conditions": {"ready": True}}
                                         for n in sorted(ready)]})
    v = view(services, l2=ads, slices=slices)
    v = ClusterView(**{**v.__dict__, "nodes": {
        n: {"metadata": {"name": n, "labels": {"rack": racks[n]}}} for n in everyone}})
    expected = reference_owners(v, live)
    for node in everyone:
        plan = make_plan(v, node, live)
        assert {ip: duty.owner for ip, duty in plan.l2.items()} == expected
        assert {ip for ip, duty in plan.l2.items() if duty.mine} == {
            ip for ip, chosen in expected.items() if chosen == node}
