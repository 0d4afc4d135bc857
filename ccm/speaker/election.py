"""Rendezvous (highest-random-weight) election of the node that announces an address.

Every speaker computes the same answer from the same inputs, so no per-Service Lease is needed:
each node only renews its own liveness Lease, and the owner of an address is the live, eligible
node with the highest ``weight(address, node)``. When a node leaves, only the addresses it owned
move (each to its runner-up); every other address keeps its owner, so a failover never makes
healthy nodes re-announce.

The weight uses BLAKE2b, not Python's ``hash()``: the latter is salted per process, and every
speaker must agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

# Separates address and node in the hashed key, so ("1.2.3.4", "5node") and ("1.2.3.45", "node")
# cannot collide; it can appear in neither an IP address nor a Kubernetes node name.
_SEPARATOR = b"\x00"


def weight(address: str, node: str) -> int:
    """The node's score for this address: a uniform, process-independent 64-bit integer."""
    key = address.encode() + _SEPARATOR + node.encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def owner(address: str, nodes: Iterable[str]) -> str | None:
    """The node that announces ``address`` among ``nodes``; None when there is no node.

    Ties (practically impossible with 64-bit weights) go to the greater node name, so the answer
    never depends on the order of ``nodes``.
    """
    best: tuple[int, str] | None = None
    for node in nodes:
        candidate = (weight(address, node), node)
        if best is None or candidate > best:
            best = candidate
    return None if best is None else best[1]


def owned_by(node: str, addresses: Iterable[str], nodes: Iterable[str]) -> set[str]:
    """The subset of ``addresses`` that ``node`` must announce, given the eligible ``nodes``.

    A node that is not among ``nodes`` (not live, or not eligible) owns nothing.
    """
    candidates = frozenset(nodes)
    if node not in candidates:
        return set()
    return {address for address in addresses if owner(address, candidates) == node}
