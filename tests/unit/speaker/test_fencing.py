"""The shipped timing: a dead speaker's addresses expire, and a node taking over waits for that."""

from __future__ import annotations

import pytest

from ccm.speaker import fencing
from ccm.speaker.l2 import L2Announcer, LoggingAnnouncer
from ccm.speaker.settings import SpeakerSettings


def test_shipped_defaults_keep_a_takeover_after_a_kill_under_two_seconds() -> None:
    s = SpeakerSettings(node_name="n")
    assert s.address_lifetime == 1
    assert s.renew_interval < s.fence_after < s.lease_duration
    # a node killed at t saw its last renewal begin at t - renew_interval at the earliest and
    # refreshed its addresses at t at the latest: they are gone by t + lifetime + slack, the
    # Lease expires on a peer by t + lease_duration, and the peer waits for whichever is later
    gone = s.address_lifetime + fencing.KERNEL_TIMER_SLACK
    expired = s.lease_duration
    assert max(gone, expired) + fencing.PROBE_WAIT < 2.0


def test_the_wait_for_silence_is_bounded_by_the_lifetime() -> None:
    assert fencing.silence_deadline(10.0, 1) == pytest.approx(11.5)
    assert fencing.silence_deadline(10.0, 3) == pytest.approx(13.5)


def test_addresses_are_added_deprecated_so_they_are_never_a_source() -> None:
    for lifetime in (None, 1):
        announcer = L2Announcer(address_lifetime=lifetime)
        for ip in ("192.0.2.10", "2001:db8::10"):
            arguments = announcer._address_arguments(ip)
            assert arguments["preferred_lft"] == 0
            assert arguments.get("valid_lft") == lifetime


async def test_without_a_network_nothing_to_wait_for() -> None:
    announcer = LoggingAnnouncer()
    await announcer.announce("192.0.2.10", "eth0")
    assert await announcer.wait_claimed("192.0.2.10", 5.0) is False
    assert await announcer.wait_silent("192.0.2.10", "eth0", 0.0) is True
