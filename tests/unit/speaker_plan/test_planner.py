"""The incremental planner equals the full plan after every change, and says what changed.

Random sequences of changes — Services created, changed and deleted (shared addresses,
dual-stack, other classes, being deleted, Local with EndpointSlices coming, moving and going),
pools, advertisements, peers, Node labels and the live set — are applied to one cluster view;
after each batch ``Planner.update`` must leave exactly the plan ``make_plan`` computes from
scratch, report every address whose duty differs from the plan before, and every Service
whose announcing-node annotation (its addresses' owners) may differ where this node may be
the one writing it. Another speaker joining or leaving is not a full rebuild: the fields are
refreshed in place, and what must be reported is then what this node acts on (an address it
gains or loses, a Service it annotates), not every address whose candidates changed; this
one's own liveness is a rebuild."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ccm.contract import names
from ccm.speaker.plan import ClusterView, Plan, make_plan
from ccm.speaker.planner import Changes, Planner

NODE = "me"
NODES = ["me", "n1", "n2", "n3", "n4"]
SERVICES = ["s0", "s1", "s2"]
SLICES = [f"e{i}" for i in range(3)]
ADDRESSES = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "2001:db8::1"]  # few: often shared

L2_ADS: list[dict[str, Any]] = [
    {}, {"ipPools": ["a"]}, {"ipPoolSelectors": [{"matchLabels": {"zone": "y"}}]},
    {"nodeSelectors": [{"matchLabels": {"rack": "r1"}}], "interfaces": ["eth1"]},
    {"nodeSelectors": [{"matchLabels": {"rack": "r2"}}], "interfaces": ["bond0"]},
    {"interfaces": ["bad/name"]},  # refused by the model: reported, left out
]
BGP_ADS: list[dict[str, Any]] = [
    {}, {"ipPools": ["b"], "communities": ["64512:100"], "localPref": 200},
    {"nodeSelectors": [{"matchLabels": {"rack": "r1"}}], "peers": ["p1"]},
    {"communities": ["notacommunity"]},  # refused
]


def peer(name: str, hold: str, rack: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"address": "192.0.2.254", "asn": 64512, "localASN": 64512,
                            "holdTime": hold}
    if rack:
        spec["nodeSelectors"] = [{"matchLabels": {"rack": rack}}]
    return {"metadata": {"name": name}, "spec": spec}


def service(namespace: str, name: str, ips: list[str], pools: str, *, local: bool,
            kind: str, lb_class: str | None, deleting: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace,
                            "annotations": {names.ANN_ALLOCATED_FROM: pools}}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-30T00:00:00Z"
    spec: dict[str, Any] = {"type": kind}
    if local:
        spec["externalTrafficPolicy"] = "Local"
    if lb_class is not None:
        spec["loadBalancerClass"] = lb_class
    return {"metadata": meta, "spec": spec,
            "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}}}


# mostly in one namespace, mostly ours with an address: the cases where plans differ
namespaces = st.sampled_from(["default"] * 9 + ["team"])
services_st = st.builds(
    service,
    namespaces, st.sampled_from(SERVICES),
    st.lists(st.sampled_from(ADDRESSES), min_size=1, max_size=2),
    st.sampled_from(["a", "a", "b", "a,b", ""]),
    local=st.sampled_from([True, True, False]),
    kind=st.sampled_from(["LoadBalancer"] * 9 + ["ClusterIP"]),
    lb_class=st.sampled_from([None] * 6 + [names.LOAD_BALANCER_CLASS] * 3 + ["example.com/x"]),
    deleting=st.sampled_from([False] * 9 + [True]),
)


def endpoint_slice(namespace: str, name: str, service_name: str | None,
                   endpoints: list[tuple[str, bool | None]]) -> dict[str, Any]:
    labels = {"kubernetes.io/service-name": service_name} if service_name else {}
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels},
            "endpoints": [{"nodeName": node, "conditions": {"ready": ready}}
                          for node, ready in endpoints]}


slices_st = st.builds(
    endpoint_slice, namespaces, st.sampled_from(SLICES),
    st.sampled_from([*SERVICES] * 3 + [None]),
    st.lists(st.tuples(st.sampled_from(NODES), st.sampled_from([True, True, False, None])),
             max_size=3),
)


def key_of(obj: dict[str, Any]) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


def by_service(plan: Plan) -> dict[str, tuple[tuple[str, str | None, bool], ...]]:
    """What each Service's announcing-node annotation is made of: its L2 addresses' owners."""
    found: dict[str, set[tuple[str, str | None, bool]]] = {}
    for ip, duty in plan.l2.items():
        for key in duty.services:
            found.setdefault(key, set()).add((ip, duty.owner, duty.mine))
    return {key: tuple(sorted(items, key=str)) for key, items in found.items()}


def snapshot(plan: Plan) -> dict[str, tuple[Any, ...]]:
    """The L2 duties by value (a duty's candidates are its field's, refreshed in place)."""
    return {ip: (duty.services, duty.mine, duty.candidates, dict(duty.node_interfaces))
            for ip, duty in plan.l2.items()}


class Cluster:
    """One mutable cluster view and the planner that follows it."""

    def __init__(self, serve_unclassed: bool) -> None:
        self.services: dict[str, Any] = {}
        self.slices: dict[str, Any] = {}
        self.pools = {"a": {"metadata": {"name": "a", "labels": {"zone": "x"}}},
                      "b": {"metadata": {"name": "b", "labels": {"zone": "y"}}}}
        # from the start: duties whose interfaces and BGP attributes depend on which
        # advertisements select them (changed later by global changes)
        self.l2: dict[str, Any] = {"0": {"spec": {}}, "1": {"spec": L2_ADS[3]}}
        self.bgp: dict[str, Any] = {"0": {"spec": {}}, "1": {"spec": BGP_ADS[1]},
                                    "2": {"spec": {"communities": ["64512:7"]}}}
        self.peers: dict[str, Any] = {}
        self.nodes = {n: {"metadata": {"name": n, "labels": {"rack": "r1"}}} for n in NODES}
        self.live = frozenset(NODES)
        self.view = ClusterView(
            services=self.services, pools=self.pools, l2_advertisements=self.l2,
            bgp_advertisements=self.bgp, peers=self.peers, nodes=self.nodes,
            endpoint_slices=self.slices, serve_unclassed=serve_unclassed)
        self.planner = Planner(NODE)
        self.stale = True  # a global change since the last update: a full rebuild is due

    def apply(self, change: tuple[Any, ...]) -> None:
        kind, *args = change
        if kind == "put-service":
            (obj,) = args
            self.services[key_of(obj)] = obj
            self.planner.service_changed(key_of(obj))
        elif kind == "delete-service":
            key = args[0]
            self.services.pop(key, None)
            self.planner.service_changed(key)
        elif kind == "put-slice":
            (obj,) = args
            key = key_of(obj)
            old = self.slices.get(key)
            self.slices[key] = obj
            self.planner.slice_changed(key, old, obj)
        elif kind == "delete-slice":
            key = args[0]
            old = self.slices.pop(key, None)
            if old is not None:
                self.planner.slice_changed(key, old, None)
        elif kind == "live":
            # the planner notices a different live set by itself
            self.live = frozenset(args[0]) | {NODE} if args[1] else frozenset(args[0])
        else:
            self._global(kind, args)
            self.planner.everything_changed()
            self.stale = True

    def _global(self, kind: str, args: list[Any]) -> None:
        if kind == "l2":
            self.l2.clear()
            self.l2.update({str(i): {"spec": spec} for i, spec in enumerate(args[0])})
        elif kind == "bgp":
            self.bgp.clear()
            self.bgp.update({str(i): {"spec": spec} for i, spec in enumerate(args[0])})
        elif kind == "pool":
            self.pools[args[0]]["metadata"]["labels"] = {"zone": args[1]}
        elif kind == "node":
            self.nodes[args[0]]["metadata"]["labels"] = {"rack": args[1]}
        elif kind == "peers":
            self.peers.clear()
            self.peers.update({p["metadata"]["name"]: p for p in args[0]})


# what the planner re-plans incrementally: Services and EndpointSlices (more created or
# changed than deleted, so that there are Services and slices to change)
put_service = st.tuples(st.just("put-service"), services_st)
put_slice = st.tuples(st.just("put-slice"), slices_st)
local_changes = st.one_of(
    put_service, put_service, put_service,
    st.tuples(st.just("delete-service"),
              st.builds(lambda ns, n: f"{ns}/{n}", namespaces, st.sampled_from(SERVICES))),
    put_slice, put_slice,
    st.tuples(st.just("delete-slice"),
              st.builds(lambda ns, n: f"{ns}/{n}", namespaces, st.sampled_from(SLICES))),
)
# other speakers joining or leaving (re-elects), or this one (rebuilds)
live_changes = st.tuples(st.just("live"), st.sets(st.sampled_from(NODES)),
                         st.sampled_from([True, True, True, False]))
# what rebuilds the whole plan (the live set: unless only other speakers changed)
global_changes = st.one_of(
    live_changes,
    st.tuples(st.just("l2"), st.lists(st.sampled_from(L2_ADS), max_size=3)),
    st.tuples(st.just("bgp"), st.lists(st.sampled_from(BGP_ADS), max_size=2)),
    st.tuples(st.just("pool"), st.sampled_from(["a", "b"]), st.sampled_from(["x", "y"])),
    st.tuples(st.just("node"), st.sampled_from(NODES), st.sampled_from(["r1", "r2"])),
    st.tuples(st.just("peers"), st.lists(st.builds(
        peer, st.sampled_from(["p1", "p2"]), st.sampled_from(["90s", "3m", "banana"]),
        st.sampled_from([None, "r1", "r2"])), max_size=2)),
)
# mostly incremental steps, so that each full rebuild is followed by many of them
changes_st = st.one_of(local_changes, local_changes, local_changes, local_changes,
                       live_changes, live_changes, global_changes)


@settings(max_examples=500, deadline=None)
@given(serve_unclassed=st.booleans(),
       first=st.lists(st.one_of(put_service, put_slice), min_size=2, max_size=12),
       batches=st.lists(st.lists(changes_st, min_size=1, max_size=4), min_size=3,
                        max_size=25))
def test_incremental_plan_equals_the_full_plan_after_every_change(
    serve_unclassed: bool, first: list[tuple[Any, ...]], batches: list[list[tuple[Any, ...]]],
) -> None:
    cluster = Cluster(serve_unclassed)
    for change in first:  # the cluster as the first (full) plan finds it
        cluster.apply(change)
    for batch in [[], *batches]:
        step(cluster, batch)


def step(cluster: Cluster, batch: list[tuple[Any, ...]]) -> Changes:
    """Apply one batch, update the plan, and check it against ``make_plan`` and the report."""
    planner = cluster.planner
    l2_before, bgp_before = snapshot(planner.plan), dict(planner.plan.bgp)
    annotations_before = by_service(planner.plan)
    for change in batch:
        cluster.apply(change)
    live_before = planner._planning.live if planner._planning else None
    changes = planner.update(cluster.view, cluster.live)
    expected = make_plan(cluster.view, NODE, cluster.live)
    after = planner.plan
    assert after.l2 == expected.l2
    assert after.bgp == expected.bgp
    assert after.peers == expected.peers
    assert after.invalid == expected.invalid
    # the re-election's index agrees with the plan (what it may skip rests on it)
    assert planner._rolls.owned == {ip for ip, duty in after.l2.items() if duty.mine}
    # incremental whenever only Services, endpoints and other speakers' liveness changed
    own_flip = live_before is not None and (NODE in live_before) != (NODE in cluster.live)
    assert changes.full == (cluster.stale or own_flip)
    assert changes.re_elected == (not changes.full and live_before != cluster.live)
    cluster.stale = False
    # what the process reads for the annotations
    annotations_after = by_service(after)
    assert annotations_after == by_service(expected)  # owners kept right through refreshes
    assert set(planner.l2_services()) == set(annotations_after)
    for key, items in annotations_after.items():
        assert set(planner.l2_addresses(key)) == {ip for ip, _, _ in items}
    if changes.full:
        return changes  # everything may have changed: the process applies every address
    l2_after = snapshot(after)
    for ip in l2_before.keys() | l2_after.keys():
        was, now = l2_before.get(ip), l2_after.get(ip)
        if was is None or now is None or was[:2] != now[:2]:  # gained, lost, Services
            assert ip in changes.addresses, ip
        elif was != now and not changes.re_elected:
            assert ip in changes.addresses, ip
    for ip in bgp_before.keys() | after.bgp.keys():
        if bgp_before.get(ip) != after.bgp.get(ip):
            assert ip in changes.addresses, ip
    for key in annotations_before.keys() | annotations_after.keys():
        ours = any(mine for items in (annotations_before.get(key, ()),
                                      annotations_after.get(key, ()))
                   for _, _, mine in items)
        if ours and annotations_before.get(key) != annotations_after.get(key):
            assert key in changes.services, key
    return changes


MANY_NODES = [NODE, *(f"m{i}" for i in range(8))]


@settings(max_examples=300, deadline=None)
@given(dual_stack=st.lists(st.booleans(), min_size=24, max_size=24),
       local=st.lists(st.sampled_from([None, None, (0, 3), (2, 7)]), min_size=24,
                      max_size=24),
       live_sets=st.lists(st.sets(st.sampled_from(MANY_NODES[1:])), min_size=2, max_size=12))
def test_speakers_joining_and_leaving_re_elect_only_what_changed(
    dual_stack: list[bool], local: list[tuple[int, int] | None], live_sets: list[set[str]],
) -> None:
    """24 Services (some dual-stack, some Local with endpoints on a range of nodes) and other
    speakers coming and going in any combination, this one live throughout: after each
    change the plan equals ``make_plan``, with every flip and annotation reported."""
    cluster = Cluster(serve_unclassed=True)
    for node in MANY_NODES:
        cluster.nodes[node] = {"metadata": {"name": node, "labels": {"rack": "r1"}}}
    cluster.live = frozenset(MANY_NODES)
    for i, (two, ready) in enumerate(zip(dual_stack, local, strict=True)):
        ips = [f"192.0.2.{i + 1}", *([f"2001:db8::{i + 1:x}"] if two else [])]
        cluster.apply(("put-service", service("default", f"v{i}", ips, "a", local=bool(ready),
                                              kind="LoadBalancer", lb_class=None,
                                              deleting=False)))
        if ready:
            endpoints = [(node, True) for node in MANY_NODES[ready[0]:ready[1]]]
            cluster.apply(("put-slice", endpoint_slice("default", f"v{i}", f"v{i}",
                                                       endpoints)))
    step(cluster, [])
    for others in live_sets:
        changes = step(cluster, [("live", others, True)])
        assert not changes.full


def test_an_endpoint_change_alone_replans_its_service() -> None:
    """A Local Service gets this node as a candidate when its EndpointSlice says so, and loses
    it when the slice moves to another Service: no Service event in between."""
    cluster = Cluster(serve_unclassed=True)
    cluster.apply(("put-service", service("default", "s0", ["192.0.2.1"], "a", local=True,
                                          kind="LoadBalancer", lb_class=None, deleting=False)))
    cluster.planner.update(cluster.view, cluster.live)
    assert cluster.planner.plan.l2["192.0.2.1"].candidates == frozenset()
    cluster.apply(("put-slice", endpoint_slice("default", "e0", "s0", [(NODE, True)])))
    changes = cluster.planner.update(cluster.view, cluster.live)
    assert not changes.full and changes.addresses == {"192.0.2.1"}
    assert changes.services == {"default/s0"}
    assert cluster.planner.plan.l2["192.0.2.1"].mine
    cluster.apply(("put-slice", endpoint_slice("default", "e0", "s1", [(NODE, True)])))
    changes = cluster.planner.update(cluster.view, cluster.live)
    assert changes.addresses == {"192.0.2.1"} and changes.services == {"default/s0", "default/s1"}
    assert cluster.planner.plan.l2 == make_plan(cluster.view, NODE, cluster.live).l2
    assert cluster.planner.plan.l2["192.0.2.1"].candidates == frozenset()


def test_a_field_no_address_uses_is_not_left_behind_by_a_re_election() -> None:
    """The candidates of a pool whose last address went away are not refreshed when a speaker
    leaves; the next address from that pool must still get the live nodes of now."""
    cluster = Cluster(serve_unclassed=True)
    s0 = ("put-service", service("default", "s0", ["192.0.2.1"], "a", local=False,
                                 kind="LoadBalancer", lb_class=None, deleting=False))
    step(cluster, [s0])
    step(cluster, [("delete-service", "default/s0")])
    assert not cluster.planner.plan.l2
    assert not step(cluster, [("live", {"n1"}, True)]).full  # n2, n3, n4 left
    changes = step(cluster, [s0])
    assert changes.addresses == {"192.0.2.1"}
    assert cluster.planner.plan.l2["192.0.2.1"].candidates == {NODE, "n1"}


def test_an_address_moves_to_its_new_field_even_when_both_have_no_live_candidate() -> None:
    """A Local Service's endpoints move from no node to n4 while n4 is not live: the
    candidates stay empty, but the address now belongs to the field of ready node n4, and
    when n4 joins it must become n4's (hypothesis found this)."""
    cluster = Cluster(serve_unclassed=True)
    svc = ("put-service", service("default", "s2", ["192.0.2.1"], "a", local=True,
                                  kind="LoadBalancer", lb_class=None, deleting=False))
    step(cluster, [svc])
    step(cluster, [("put-slice", endpoint_slice("default", "e0", "s2", [("n4", True)])),
                   ("live", set(), True)])
    assert cluster.planner.plan.l2["192.0.2.1"].candidates == frozenset()
    step(cluster, [("live", {"n4"}, True)])
    assert cluster.planner.plan.l2["192.0.2.1"].candidates == {"n4"}
