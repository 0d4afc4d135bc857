"""The unprivileged announcer, and argument checks of the real one (no root needed)."""

from __future__ import annotations

import logging

import pytest

from ccm.speaker.l2 import Announcer, L2Announcer, LoggingAnnouncer


async def test_logging_announcer_tracks_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    announcer: Announcer = LoggingAnnouncer()
    caplog.set_level(logging.INFO)
    await announcer.announce("2001:DB8::10", "eth0")
    await announcer.announce("192.0.2.10", "eth1")
    assert announcer.announced() == {"2001:db8::10", "192.0.2.10"}
    await announcer.withdraw("2001:db8::10")
    assert announcer.announced() == {"192.0.2.10"}
    await announcer.withdraw_all()
    assert announcer.announced() == set()
    messages = [record.getMessage() for record in caplog.records]
    assert "would announce 2001:db8::10 on eth0" in messages
    assert "would withdraw 192.0.2.10" in messages


async def test_logging_announcer_rejects_non_addresses() -> None:
    with pytest.raises(ValueError):
        await LoggingAnnouncer().announce("192.0.2.300", "eth0")


def test_l2_announcer_needs_at_least_one_frame() -> None:
    with pytest.raises(ValueError, match="repeats"):
        L2Announcer(repeats=0)


async def test_withdrawing_an_unknown_address_is_a_no_op() -> None:
    announcer = L2Announcer()
    await announcer.withdraw("192.0.2.10")
    assert announcer.announced() == set()


def test_l2_announcer_lifetime_must_be_whole_positive_seconds() -> None:
    with pytest.raises(ValueError, match="address_lifetime"):
        L2Announcer(address_lifetime=0)
