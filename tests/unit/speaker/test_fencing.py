"""The shipped timing keeps a killed speaker's addresses from outliving its Lease."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ccm.speaker import fencing
from ccm.speaker.l2 import L2Announcer, LoggingAnnouncer
from ccm.speaker.settings import SpeakerSettings


def test_shipped_defaults_end_an_address_before_a_takeover() -> None:
    s = SpeakerSettings(node_name="n")
    window = fencing.refresh_window(s.lease_duration, s.address_lifetime)
    assert window == pytest.approx(0.2)
    latest_expiry = window + s.address_lifetime + fencing.KERNEL_TIMER_SLACK
    assert latest_expiry < s.lease_duration
    assert s.renew_interval < s.fence_after < s.lease_duration


def test_a_lifetime_that_outlives_the_lease_is_refused_with_the_reason() -> None:
    with pytest.raises(ValidationError, match="killed speaker's addresses would still answer"):
        SpeakerSettings(node_name="n", address_lifetime=3)
    SpeakerSettings(node_name="n", address_lifetime=3, lease_duration=4.0)
    SpeakerSettings(node_name="n", address_lifetime=0)  # forever: explicitly no guarantee


def test_addresses_are_added_deprecated_so_they_are_never_a_source() -> None:
    for lifetime in (None, 1):
        announcer = L2Announcer(address_lifetime=lifetime)
        for ip in ("192.0.2.10", "2001:db8::10"):
            arguments = announcer._address_arguments(ip)
            assert arguments["preferred_lft"] == 0
            assert arguments.get("valid_lft") == lifetime


async def test_without_a_network_a_handover_does_not_wait() -> None:
    announcer = LoggingAnnouncer()
    await announcer.announce("192.0.2.10", "eth0")
    assert await announcer.wait_claimed("192.0.2.10", 5.0) is False
