"""L2 announcement: the owner of an address adds it and announces it by ARP (IPv4) / NDP (IPv6)."""

from ccm.speaker.l2.announcer import (
    VIPAM_ADDRESS_PROTO,
    AnnounceError,
    Announcer,
    L2Announcer,
    LoggingAnnouncer,
)
from ccm.speaker.l2.interfaces import interface_for

__all__ = [
    "VIPAM_ADDRESS_PROTO",
    "AnnounceError",
    "Announcer",
    "L2Announcer",
    "LoggingAnnouncer",
    "interface_for",
]
