"""Which peers' Leases expired (not released) lately: the nodes whose addresses may still answer."""

from __future__ import annotations

import pytest

from ccm.speaker import membership as module
from ccm.speaker.membership import Membership, MembershipTiming
from tests.unit.speaker.leases import Clock, lease


def test_expired_peers_are_reported_with_their_expiry_for_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(module.time, "monotonic", clock)
    seen = Membership(client=None, namespace="kube-system", node="me",  # type: ignore[arg-type]
                      timing=MembershipTiming(0.5, 1.5, 1.2))
    seen._lease_changed("kube-system/vipam-speaker-a", None, lease("a", "t1"))
    seen._lease_changed("kube-system/vipam-speaker-b", None, lease("b", "t1"))
    seen._lease_changed("kube-system/vipam-speaker-me", None, lease("me", "t1"))
    assert seen.recently_expired(1.5) == {}
    clock.now += 1.0
    seen._lease_changed("kube-system/vipam-speaker-b", None, lease("b", "t2"))  # b renews
    clock.now += 0.6  # a: 1.6 s without a renewal, expired 0.1 s ago; b: 0.6 s, alive
    assert seen.recently_expired(1.5) == {"a": pytest.approx(101.5)}
    clock.now += 1.5  # a expired 1.6 s ago: no longer "recent"; b expired 0.5 s ago
    assert seen.recently_expired(1.5) == {"b": pytest.approx(102.5)}


def test_a_released_lease_is_not_an_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(module.time, "monotonic", clock)
    seen = Membership(client=None, namespace="kube-system", node="me",  # type: ignore[arg-type]
                      timing=MembershipTiming(0.5, 1.5, 1.2))
    seen._lease_changed("kube-system/vipam-speaker-a", None, lease("a", "t1"))
    seen._lease_changed("kube-system/vipam-speaker-a", None, lease("a", "t2", holder=""))
    clock.now += 2.0
    assert seen.recently_expired(1.5) == {}


def test_back_from_a_lapse_peers_not_heard_from_yet_count_as_live(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A speaker cut off from the API must not take every address when it is back, before its
    watch has caught up with the peers' renewals; a peer that stays silent is dead after a
    lease duration, as usual."""
    clock = Clock()
    monkeypatch.setattr(module.time, "monotonic", clock)
    seen = Membership(client=None, namespace="kube-system", node="me",  # type: ignore[arg-type]
                      timing=MembershipTiming(0.5, 1.5, 1.2))
    seen._lease_changed("kube-system/vipam-speaker-a", None, lease("a", "t1"))
    seen._renewed_at = seen._joined_at = clock.now
    clock.now += 5.0  # cut off: neither our renewals nor a's reach us
    assert seen.live_nodes() == frozenset()
    seen._renewed_at = seen._back_at = clock.now  # what _renew records when we are back
    assert seen.live_nodes() == {"me", "a"}
    clock.now += 1.0
    seen._renewed_at = clock.now
    assert seen.live_nodes() == {"me", "a"}
    clock.now += 0.6  # a lease duration since we are back, and still nothing from a
    seen._renewed_at = clock.now
    assert seen.live_nodes() == {"me"}
