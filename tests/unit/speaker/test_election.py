"""Rendezvous election: agreement, stability, minimal movement and spread."""

from __future__ import annotations

import ipaddress
import math
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccm.speaker import election
from ccm.speaker.election import Electorate, outranks, owned_by, owner, weight

node_names = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=20
)
node_sets = st.sets(node_names, min_size=1, max_size=12)
addresses = st.one_of(
    st.ip_addresses(v=4, network="192.0.2.0/24"),
    st.ip_addresses(v=6, network="2001:db8::/32"),
).map(str)


def test_no_nodes_means_no_owner() -> None:
    assert owner("192.0.2.10", []) is None
    assert owned_by("node-a", ["192.0.2.10"], []) == set()


@given(addresses, node_sets)
def test_owner_is_one_of_the_nodes_and_ignores_their_order(address: str, nodes: set[str]) -> None:
    ordered = sorted(nodes)
    chosen = owner(address, ordered)
    assert chosen in nodes
    assert owner(address, reversed(ordered)) == chosen


@given(addresses, node_sets, node_names)
def test_a_leaving_node_moves_only_its_own_addresses(
    address: str, nodes: set[str], leaving: str
) -> None:
    nodes = nodes | {leaving}
    before = owner(address, nodes)
    after = owner(address, nodes - {leaving})
    if before != leaving:
        assert after == before
    else:
        assert after != leaving


@given(addresses, node_sets, node_names)
def test_a_joining_node_takes_addresses_only_for_itself(
    address: str, nodes: set[str], joining: str
) -> None:
    before = owner(address, nodes)
    after = owner(address, nodes | {joining})
    assert after in (before, joining)


@given(st.lists(addresses, max_size=30), node_sets)
def test_owned_by_partitions_the_addresses(addrs: list[str], nodes: set[str]) -> None:
    shares = [owned_by(node, addrs, nodes) for node in nodes]
    union: set[str] = set().union(*shares)
    assert union == set(addrs)
    assert sum(len(share) for share in shares) == len(set(addrs))


def test_a_node_outside_the_eligible_set_owns_nothing() -> None:
    assert owned_by("gone", ["192.0.2.10", "2001:db8::10"], ["node-a", "node-b"]) == set()


def test_spread_is_uniform_across_nodes() -> None:
    """4096 addresses over 8 nodes: each count within 5 standard deviations of the mean.

    The bound is wide enough never to fail for a uniform hash and narrow enough to fail for a
    biased one (e.g. one that ignores the node name, which would give all to one node).
    """
    nodes = [f"node-{i}" for i in range(8)]
    network = ipaddress.ip_network("2001:db8::/116")
    counts = Counter(owner(str(address), nodes) for address in network)
    mean = network.num_addresses / len(nodes)
    sigma = math.sqrt(mean * (1 - 1 / len(nodes)))
    assert set(counts) == set(nodes)
    for node in nodes:
        assert abs(counts[node] - mean) < 5 * sigma, counts


def test_weights_agree_across_processes() -> None:
    """Every speaker must compute the same weights: Python's hash() salt would break this."""
    code = "from ccm.speaker.election import weight; print(weight('192.0.2.10', 'node-a'))"
    env = {"PYTHONHASHSEED": "12345"}
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert int(other.stdout) == weight("192.0.2.10", "node-a")


@given(st.lists(addresses, max_size=30), node_sets)
def test_owned_by_agrees_with_owner(addrs: list[str], nodes: set[str]) -> None:
    for node in nodes:
        assert owned_by(node, addrs, nodes) == {a for a in addrs if owner(a, nodes) == node}


@pytest.mark.parametrize("ring_limit", [election.RING_LIMIT, 2])  # kept rings, copied rings
@given(addrs=st.lists(addresses, min_size=1, max_size=20), nodes=node_sets, node=node_names)
def test_the_blocker_outweighs_us_exactly_when_we_do_not_own_the_address(
    ring_limit: int, addrs: list[str], nodes: set[str], node: str
) -> None:
    nodes = nodes | {node}
    previous, election.RING_LIMIT = election.RING_LIMIT, ring_limit
    try:
        electorate = Electorate(node, nodes)
        for address in addrs:
            blocker = electorate.blocker(address)
            assert electorate.wins(address) == (blocker is None) == (owner(address, nodes) == node)
            if blocker is not None:
                assert blocker in nodes and outranks(address, blocker, node)
    finally:
        election.RING_LIMIT = previous


def test_blockers_are_spread_over_the_other_nodes() -> None:
    """When a node leaves, the addresses it blocked are the ones to elect again: each of the
    8 others must block about an eighth of what we do not own. Scanning them in one fixed
    order would leave the first node blocking half (4 times the mean); the bound is 1.5."""
    nodes = ["me", *(f"node-{i}" for i in range(8))]
    electorate = Electorate("me", nodes)
    network = ipaddress.ip_network("2001:db8::/116")
    counts = Counter(electorate.blocker(str(address)) for address in network)
    lost = network.num_addresses - counts.pop(None)
    assert set(counts) == set(nodes) - {"me"}
    assert max(counts.values()) < 1.5 * lost / 8, counts
