"""BGP announcement of service addresses through a supervised ExaBGP subprocess."""

from ccm.speaker.bgp.config import Peer, Route
from ccm.speaker.bgp.speaker import BGPError, BGPRefused, BGPSpeaker

__all__ = ["BGPError", "BGPRefused", "BGPSpeaker", "Peer", "Route"]
