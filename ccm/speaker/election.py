"""Rendezvous (highest-random-weight) election of the node that announces an address.

Every speaker computes the same answer from the same inputs, so no per-Service Lease is needed:
each node only renews its own liveness Lease, and the owner of an address is the live, eligible
node with the highest ``weight(address, node)``. When a node leaves, only the addresses it owned
move (each to its runner-up); every other address keeps its owner, so a failover never makes
healthy nodes re-announce.

The weight uses BLAKE2b, not Python's ``hash()``: the latter is salted per process, and every
speaker must agree. ``Electorate.wins`` and ``owned_by`` must always agree with ``owner``; the
tests check both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import lru_cache

_MASK = (1 << 64) - 1
# up to this many other nodes an electorate keeps every rotation of them (256^2 references,
# 0.5 MB); past it each scan copies its rotation instead
RING_LIMIT = 256


@lru_cache(maxsize=65536)
def _digest(name: str) -> int:
    """A stable 64-bit hash of an address or a node name (BLAKE2b, same in every process)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")


def _mix(value: int) -> int:
    """The SplitMix64 finaliser: spreads every input bit over the whole 64-bit output."""
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def weight(address: str, node: str) -> int:
    """The node's score for this address: a uniform, process-independent 64-bit integer.

    Each name is hashed once (cached) and pairs are combined with a cheap integer mixer, so a
    full pass over 10,000 addresses and 100 nodes costs integer arithmetic, not a million
    cryptographic hashes.
    """
    return _mix(_digest(address) ^ _digest(node))


def owner(address: str, nodes: Iterable[str]) -> str | None:
    """The node that announces ``address`` among ``nodes``; None when there is no node.

    Ties (practically impossible with 64-bit weights) go to the greater node name, so the answer
    never depends on the order of ``nodes``.
    """
    address_digest = _digest(address)
    best: tuple[int, str] | None = None
    for node in nodes:
        candidate = (_mix(address_digest ^ _digest(node)), node)
        if best is None or candidate > best:
            best = candidate
    return None if best is None else best[1]


class Electorate:
    """One node's view of a fixed set of eligible nodes, prepared once for many addresses.

    ``blocker(address)`` says whether ``node`` is the owner without ranking every node: it
    stops at the first other node that outweighs it (on average H(n - 1) ~ ln n + 0.58 weights,
    5.2 for 100 nodes, instead of n) and names that node; only for the ~1/n of addresses the
    node does own is the whole set scanned. Each address starts its scan at its own place in
    the ring of other nodes, so every node blocks about as many addresses as any other: when
    one leaves, the addresses it blocked are the ones to look at again, a 1/n share
    (``ccm.speaker.planner``). The answer never depends on that order: ``wins`` is exactly
    ``owner(address, nodes) == node`` (same weights, same tie rule: the greater name wins).
    """

    __slots__ = ("_digest", "_others", "_rings", "eligible", "node")

    def __init__(self, node: str, nodes: Iterable[str]) -> None:
        candidates = frozenset(nodes)
        self.node = node
        self.eligible = node in candidates
        self._digest = _digest(node)
        self._others = tuple(sorted((_digest(other), other)
                                    for other in candidates if other != node))
        self._rings: tuple[tuple[tuple[int, str], ...], ...] | None = None

    def wins(self, address: str) -> bool:
        return self.eligible and self.blocker(address) is None

    def blocker(self, address: str) -> str | None:
        """None when ``node`` owns ``address``; else one other node that outweighs it.
        (Meaningful only when ``node`` is eligible.)"""
        others = self._others
        address_digest = _digest(address)
        if not others:
            return None
        start = address_digest % len(others)
        if len(others) > RING_LIMIT:  # a copy per call (O(n), in C) over n^2 references kept
            ring = (others + others)[start:start + len(others)]
        else:
            rings = self._rings
            if rings is None:  # every rotation, built once per electorate
                rings = self._rings = tuple(others[i:] + others[:i] for i in range(len(others)))
            ring = rings[start]
        mine = _mix(address_digest ^ self._digest)
        node = self.node
        for other_digest, other in ring:
            # _mix inlined: this loop is the plan's hot path (10,000 addresses x ~5 nodes)
            value = address_digest ^ other_digest
            value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
            value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
            theirs = value ^ (value >> 31)
            if theirs > mine or (theirs == mine and other > node):
                return other
        return None


def outranks(address: str, challenger: str, holder: str) -> bool:
    """Whether ``challenger`` outweighs ``holder`` for ``address`` (the election's order)."""
    return (weight(address, challenger), challenger) > (weight(address, holder), holder)


def owned_by(node: str, addresses: Iterable[str], nodes: Iterable[str]) -> set[str]:
    """The subset of ``addresses`` that ``node`` must announce, given the eligible ``nodes``.

    A node that is not among ``nodes`` (not live, or not eligible) owns nothing."""
    electorate = Electorate(node, nodes)
    if not electorate.eligible:
        return set()
    return {address for address in addresses if electorate.wins(address)}
