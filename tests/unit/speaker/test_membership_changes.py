"""Only a change of who is live re-plans: other speakers' routine renewals do not.

With 100 nodes each renewing its Lease every period, a speaker sees 100 Lease updates per
period; each would cost a full plan over every Service if it marked the state dirty."""

from __future__ import annotations

import pytest

from ccm.speaker import membership as module
from ccm.speaker.membership import Membership, MembershipTiming
from tests.unit.speaker.leases import Clock, lease


def test_renewals_that_keep_everyone_live_trigger_no_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(module.time, "monotonic", clock)
    changes: list[float] = []
    seen = Membership(client=None, namespace="kube-system", node="me",  # type: ignore[arg-type]
                      timing=MembershipTiming(0.5, 1.5, 1.2),
                      on_change=lambda: changes.append(clock.now))
    peers = [f"n{i:02d}" for i in range(99)]
    seen._renewed_at = seen._joined_at = clock.now - 2.0  # settled
    seen._renewed_at = clock.now
    for peer in peers:
        seen._lease_changed(f"kube-system/vipam-speaker-{peer}", None, lease(peer, "t0"))
    assert seen.live_nodes() == {"me", *peers}
    joined = len(changes)
    assert joined >= 1  # the peers appearing is a change

    for period in range(1, 6):  # five renew periods: every peer renews in each
        clock.now += 0.5
        seen._renewed_at = clock.now
        for peer in peers:
            seen._lease_changed(f"kube-system/vipam-speaker-{peer}", None,
                                lease(peer, f"t{period}"))
        seen._check()  # what the expiry watcher does between renewals
    assert len(changes) == joined, "renewals alone must not re-plan"

    # a peer that releases its Lease (clean stop) is a change: one plan
    seen._lease_changed("kube-system/vipam-speaker-n00", None, lease("n00", "t6", holder=""))
    assert len(changes) == joined + 1
    # a peer that stops renewing is a change once its lease duration has passed
    for _ in range(4):
        clock.now += 0.5
        seen._renewed_at = clock.now
        for peer in peers[2:]:
            seen._lease_changed(f"kube-system/vipam-speaker-{peer}", None,
                                lease(peer, f"u{clock.now}"))
        seen._check()
    assert len(changes) == joined + 2
    assert "n01" not in seen.live_nodes()
