"""Which interface an address should be announced on, when the advertisement does not say.

An L2 announcement only makes sense on the segment the address belongs to: the interface that
already holds an address of a subnet containing the VIP (longest prefix wins). Failing that,
the interface the kernel would route the VIP through. Addresses vipam added itself never
count: they are /32 and /128 host routes and say nothing about the segment.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ccm.speaker.l2.announcer import VIPAM_ADDRESS_PROTO


async def interface_for(ip: str, allowed: Iterable[str] | None = None) -> str | None:
    """The interface to announce ``ip`` on, among ``allowed`` names (None: any); None if none.

    Loopback is never chosen: nothing on the segment hears it.
    """
    address = ipaddress.ip_address(ip)
    permitted = None if allowed is None else set(allowed)
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    async with AsyncIPRoute() as ipr:
        names: dict[int, str] = {
            link["index"]: link.get("ifname")
            async for link in await ipr.link("dump")
            if not link["flags"] & 0x8  # IFF_LOOPBACK
        }

        def usable(index: int) -> bool:
            name = names.get(index)
            return name is not None and (permitted is None or name in permitted)

        best: tuple[int, str] | None = None
        async for message in await ipr.addr("dump", family=family):
            if message.get("proto") == VIPAM_ADDRESS_PROTO or not usable(message["index"]):
                continue
            network = ipaddress.ip_network(
                f"{message.get('address')}/{message['prefixlen']}", strict=False
            )
            if address in network and (best is None or network.prefixlen > best[0]):
                best = (network.prefixlen, names[message["index"]])
        if best is not None:
            return best[1]
        try:
            routes = await ipr.route("get", dst=str(address))
        except NetlinkError:  # no route at all
            return None
        for route in routes:
            index = route.get("oif")
            if index is not None and usable(index):
                return names[index]
    return None
