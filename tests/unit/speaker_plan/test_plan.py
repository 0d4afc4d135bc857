"""The pure announcement plan: selection by pool and node, Local policy, owners, BGP duties."""

from __future__ import annotations

from typing import Any

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
            "address": address, "asn": 64512,
            "nodeSelectors": [{"matchLabels": {"rack": rack}}]}}

    peers = [peer("r1-peer", "192.0.2.254", "r1"), peer("r2-peer", "192.0.2.253", "r2")]
    plan = make_plan(view([svc("s", ["192.0.2.1", "2001:db8::1"], "a")], bgp=[{
        "communities": ["64512:100"], "localPref": 200, "peers": ["r1-peer"]}], peers=peers),
        "n1", LIVE)
    assert set(plan.bgp) == {"192.0.2.1", "2001:db8::1"}
    duty = plan.bgp["192.0.2.1"]
    assert duty.communities == ("64512:100",) and duty.local_pref == 200
    assert duty.peers == ("r1-peer",)
    assert [p["metadata"]["name"] for p in plan.peers] == ["r1-peer"]


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
