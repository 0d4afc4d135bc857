"""Make an address reachable on a shared L2 segment from this node.

The owner adds the address to the interface (so the kernel answers ARP/NDP for it and accepts
its traffic) and then tells the segment that it moved: gratuitous ARP for IPv4, unsolicited
neighbour advertisements with the Override flag for IPv6. The first burst is sent before
``announce`` returns, so a failure surfaces to the caller; the repeats (spaced, because a
single frame can be lost or arrive during a switch's MAC-learning window) run in the
background, so announcing many addresses does not serialise on the spacing.

Addresses we add carry our own address protocol number (``IFA_PROTO``), so that a speaker
restarted after being killed can find and remove what its predecessor left behind (``reclaim``)
without ever touching addresses someone else configured.

With ``address_lifetime`` the addresses are added with a kernel lifetime (valid_lft) that
``refresh`` extends; the speaker calls it while its Lease is renewed. A speaker that is killed,
hangs or stops renewing thus loses its addresses in the kernel itself when the lifetime runs
out: self-fencing that holds even when no code of ours runs any more. ``wait_silent`` lets the
node that takes over check on the segment that this has happened (``ccm.speaker.fencing``).

Every address is added deprecated (``preferred_lft 0``): it receives and is answered for, but
the kernel never picks it as the source of the node's own traffic. A preferred /128 (or /32)
VIP would win source selection for any peer on its segment (longest match), so the node would
talk, and kube-proxy would masquerade, from an address that moves to another node at failover.

``wait_claimed`` ends a make-before-break handover: it returns once another host claims the
address on the segment (``claims``), and the caller withdraws it then.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Iterable
from typing import Any, Protocol

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD

from ccm.speaker import fencing
from ccm.speaker.l2.claims import ClaimListener
from ccm.speaker.l2.frames import announcement_frames

log = logging.getLogger(__name__)

HANDOVER_GRACE = 0.2
"""Seconds the old owner keeps an address after hearing its new owner (see ``wait_claimed``):
both answer for this long, well under a neighbour-cache lifetime, never for a dead node."""

RTN_LOCAL = 2  # route type of the kernel's own addresses (linux/rtnetlink.h)

#: ``IFA_PROTO`` value that marks addresses added by vipam (kernel values 0-3 are reserved).
VIPAM_ADDRESS_PROTO = 118


class AnnounceError(RuntimeError):
    """The address could not be announced (unknown interface, address owned by someone else)."""


class Announcer(Protocol):
    """What the speaker needs from an L2 announcer; the real one and the logging one agree."""

    async def announce(self, ip: str, interface: str) -> None: ...

    async def withdraw(self, ip: str) -> None: ...

    async def withdraw_all(self) -> None: ...

    async def refresh(self) -> None: ...

    async def wait_claimed(self, ip: str, timeout: float) -> bool: ...

    async def wait_silent(self, ip: str, interface: str, deadline: float) -> bool: ...

    async def reclaim(self) -> set[str]: ...

    def announced(self) -> set[str]: ...

    def close(self) -> None: ...


def _normalise(ip: str) -> str:
    return str(ipaddress.ip_address(ip))


def _host_prefixlen(ip: str) -> int:
    return 32 if ipaddress.ip_address(ip).version == 4 else 128


class FrameSender:
    """Raw Ethernet output, one packet socket per interface, kept open.

    Closing a packet socket waits for a network-wide RCU grace period (about 10 ms, more under
    load): opening one per frame burst made each announce cost tens of milliseconds, which adds
    up when a failed node's addresses move at once. Bound with protocol 0, the sockets receive
    nothing, so keeping them open costs no buffers.
    """

    def __init__(self) -> None:
        self._sockets: dict[str, socket.socket] = {}

    def _socket(self, interface: str) -> socket.socket:
        sock = self._sockets.get(interface)
        if sock is None:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            try:
                sock.bind((interface, 0))
            except OSError:
                sock.close()
                raise
            self._sockets[interface] = sock
        return sock

    def _forget(self, interface: str) -> None:
        sock = self._sockets.pop(interface, None)
        if sock is not None:
            sock.close()

    def mac(self, interface: str) -> bytes:
        """The interface's hardware address (read from the bound socket, so always current)."""
        address: bytes = self._socket(interface).getsockname()[4]
        return address

    def send(self, interface: str, frames: Iterable[bytes]) -> None:
        """Send ``frames`` out of ``interface`` (needs CAP_NET_RAW).

        One retry on a fresh socket: an interface deleted and re-created under the same name
        (a new index) leaves the cached socket bound to the old one.
        """
        frames = list(frames)
        for attempt in (1, 2):
            try:
                sock = self._socket(interface)
                for frame in frames:
                    sock.send(frame)
                return
            except OSError:
                self._forget(interface)
                if attempt == 2:
                    raise

    def close(self) -> None:
        for interface in list(self._sockets):
            self._forget(interface)


class L2Announcer:
    """Announces addresses from this node: adds each to its interface, then ARP/NDP bursts."""

    def __init__(
        self, *, repeats: int = 3, interval: float = 0.5, address_lifetime: int | None = None
    ) -> None:
        if repeats < 1:
            raise ValueError("repeats must be at least 1")
        if address_lifetime is not None and address_lifetime < 1:
            raise ValueError("address_lifetime must be at least 1 second")
        self.repeats = repeats
        self.interval = interval
        self.address_lifetime = address_lifetime
        self._interfaces: dict[str, str] = {}
        # one change to the node's addresses at a time, each checked against _interfaces: a
        # refresh that walked on after a withdrawal would re-add the withdrawn address, and
        # the node would answer beside its new owner until the address's lifetime ran out
        self._changing = asyncio.Lock()
        self._repeaters: dict[str, asyncio.Task[None]] = {}
        self._sender = FrameSender()
        self._claims = ClaimListener(self._sender)

    def announced(self) -> set[str]:
        return set(self._interfaces)

    def close(self) -> None:
        """Release the packet sockets (after ``withdraw_all``, or to leave addresses in place)."""
        for ip in list(self._repeaters):
            self._cancel_repeater(ip)
        self._claims.close()
        self._sender.close()

    async def announce(self, ip: str, interface: str) -> None:
        """Own ``ip`` on ``interface``.

        Idempotent: announcing again re-adds the address if someone removed it and re-sends the
        burst, so a periodic re-announce heals drift.
        """
        ip = _normalise(ip)
        current = self._interfaces.get(ip)
        if current is not None and current != interface:
            await self.withdraw(ip)
        async with self._changing:
            await self._add_address(ip, interface, ours=current == interface)
            self._interfaces[ip] = interface
        self._cancel_repeater(ip)
        try:
            frames = announcement_frames(self._sender.mac(interface), ip)
            self._sender.send(interface, frames)
        except OSError as exc:
            raise AnnounceError(f"cannot send announcements on {interface}: {exc}") from exc
        if self.repeats > 1:
            self._repeaters[ip] = asyncio.create_task(
                self._repeat(interface, frames), name=f"l2-announce-{ip}"
            )
        log.info("announcing %s on %s", ip, interface)

    async def withdraw(self, ip: str) -> None:
        """Stop announcing ``ip`` and remove it from its interface; unknown ``ip`` is a no-op."""
        ip = _normalise(ip)
        self._cancel_repeater(ip)
        async with self._changing:
            interface = self._interfaces.pop(ip, None)
            if interface is None:
                return
            await self._delete_address(ip, interface)
        log.info("withdrew %s from %s", ip, interface)

    async def withdraw_all(self) -> None:
        for ip in list(self._interfaces):
            await self.withdraw(ip)
        self._sender.close()

    async def refresh(self) -> None:
        """Extend the kernel lifetime of every announced address (no-op without a lifetime).

        Call while the Lease is renewed, well within ``address_lifetime``.
        """
        if self.address_lifetime is None:
            return
        async with AsyncIPRoute() as ipr:
            for ip, interface in list(self._interfaces.items()):
                async with self._changing:
                    if self._interfaces.get(ip) != interface:
                        continue  # withdrawn (or moved) since the walk began: leave it be
                    try:
                        index = await self._index(ipr, interface)
                        await ipr.addr("replace", index=index, **self._address_arguments(ip))
                    except (NetlinkError, AnnounceError) as exc:
                        log.warning("could not refresh %s on %s: %s", ip, interface, exc)

    async def wait_claimed(self, ip: str, timeout: float) -> bool:
        """Keep ``ip`` until another host claims it on its segment, at most ``timeout`` s, and
        then ``HANDOVER_GRACE`` s more.

        True if claimed. The address stays ours either way; the caller withdraws it. The grace:
        a client hears the new owner's announcement at the same moment we do, and one that sent
        a packet with its old neighbour entry in that instant would otherwise reach a node that
        just let the address go (seen as one failed request of ~200 in a rolling restart)."""
        interface = self._interfaces.get(_normalise(ip))
        if interface is None:
            return True
        try:
            claimed = await self._claims.wait(ip, interface, timeout)
        except OSError as exc:  # cannot listen (interface gone): nothing to wait for
            log.warning("cannot hear who claims %s on %s: %s", ip, interface, exc)
            return False
        if claimed:
            log.info("%s claimed by another host on %s; letting go in %.1f s", ip, interface,
                     HANDOVER_GRACE)
            await asyncio.sleep(HANDOVER_GRACE)
        return claimed

    async def wait_silent(self, ip: str, interface: str, deadline: float) -> bool:
        """Before taking ``ip`` over from a dead node: True once nobody answers for it on
        ``interface``, False if someone still does at the monotonic ``deadline``."""
        try:
            return await self._claims.wait_silent(ip, interface, deadline, fencing.PROBE_WAIT)
        except OSError as exc:  # cannot probe: the lifetime bound is all we have
            log.warning("cannot probe %s on %s: %s", ip, interface, exc)
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            return False

    async def reclaim(self) -> set[str]:
        """Remove addresses that a previous speaker on this node added and never withdrew.

        Call once at start-up, before announcing: a speaker killed with SIGKILL (or OOM) leaves
        its addresses on the interface, where the kernel would keep answering ARP/NDP for them
        after another node took over. Only addresses marked with our protocol are touched.
        """
        removed: set[str] = set()
        async with AsyncIPRoute() as ipr:
            stale = [
                (message["index"], message.get("address"), message["prefixlen"])
                async for message in await ipr.addr("dump")
                if message.get("proto") == VIPAM_ADDRESS_PROTO
                and message.get("address") not in self._interfaces
            ]
            for index, address, prefixlen in stale:
                with contextlib.suppress(NetlinkError):
                    await ipr.addr("del", index=index, address=address, prefixlen=prefixlen)
                    removed.add(address)
        if removed:
            log.warning("removed addresses left by a previous speaker: %s", sorted(removed))
        return removed

    async def _repeat(self, interface: str, frames: list[bytes]) -> None:
        for _ in range(self.repeats - 1):
            await asyncio.sleep(self.interval)
            try:
                self._sender.send(interface, frames)
            except OSError as exc:  # interface went away; the next reconcile reports it
                log.warning("repeat announcement on %s failed: %s", interface, exc)
                return

    def _cancel_repeater(self, ip: str) -> None:
        task = self._repeaters.pop(ip, None)
        if task is not None:
            task.cancel()

    def _address_arguments(self, ip: str) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "address": ip,
            "prefixlen": _host_prefixlen(ip),
            "proto": VIPAM_ADDRESS_PROTO,
            "preferred_lft": 0,  # deprecated: receives, never the node's source address
        }
        if ipaddress.ip_address(ip).version == 6:
            # without NODAD the address stays "tentative" for ~1 s and cannot be used or announced
            arguments["flags"] = IFA_F_NODAD
        if self.address_lifetime is not None:
            arguments["valid_lft"] = self.address_lifetime
        return arguments

    async def _add_address(self, ip: str, interface: str, *, ours: bool) -> None:
        """Configure ``ip``; ``ours`` (we announce it there already) re-creates it if removed."""
        arguments = self._address_arguments(ip)
        async with AsyncIPRoute() as ipr:
            index = await self._index(ipr, interface)
            if ours:
                try:
                    await ipr.addr("replace", index=index, **arguments)
                except NetlinkError as exc:
                    raise AnnounceError(f"cannot renew {ip} on {interface}: {exc}") from exc
                return
            # an address not in the local table is configured nowhere on a live interface:
            # skip the dump, whose cost grows with the number of addresses on the node
            configured = await self._configured(ipr, ip) if await self._is_local(ipr, ip) else []
            for existing in configured:
                if existing.get("proto") != VIPAM_ADDRESS_PROTO:
                    raise AnnounceError(f"{ip} is already configured on this node, not by vipam")
                if existing["index"] == index and existing["prefixlen"] == arguments["prefixlen"]:
                    # ours already (re-announce, or adopted from a killed predecessor)
                    await ipr.addr("replace", index=index, **arguments)  # renews the lifetime
                    return
                # ours, but on another interface: move it
                await ipr.addr(
                    "del", index=existing["index"], address=ip, prefixlen=existing["prefixlen"]
                )
            try:
                await ipr.addr("add", index=index, **arguments)
            except NetlinkError as exc:
                raise AnnounceError(f"cannot add {ip} to {interface}: {exc}") from exc

    @staticmethod
    async def _is_local(ipr: AsyncIPRoute, ip: str) -> bool:
        try:
            routes = await ipr.route("get", dst=ip)
        except NetlinkError:  # unreachable: certainly not local
            return False
        return any(route["type"] == RTN_LOCAL for route in routes)

    @staticmethod
    async def _configured(ipr: AsyncIPRoute, ip: str) -> list[Any]:
        """Every configuration of ``ip`` on this node, whatever its interface and prefix."""
        family = socket.AF_INET if ipaddress.ip_address(ip).version == 4 else socket.AF_INET6
        return [
            message
            async for message in await ipr.addr("dump", family=family)
            if message.get("address") == ip
        ]

    async def _delete_address(self, ip: str, interface: str) -> None:
        async with AsyncIPRoute() as ipr:
            try:
                index = await self._index(ipr, interface)
                await ipr.addr("del", index=index, address=ip, prefixlen=_host_prefixlen(ip))
            except (NetlinkError, AnnounceError) as exc:
                # already gone (interface deleted, address removed by hand): the goal is met
                log.info("%s was already gone from %s: %s", ip, interface, exc)

    @staticmethod
    async def _index(ipr: AsyncIPRoute, interface: str) -> int:
        indices = await ipr.link_lookup(ifname=interface)
        if not indices:
            raise AnnounceError(f"no interface named {interface!r}")
        index: int = indices[0]
        return index


class LoggingAnnouncer:
    """Same interface, touches nothing: for the unprivileged playground and dry runs."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or log
        self._interfaces: dict[str, str] = {}

    def announced(self) -> set[str]:
        return set(self._interfaces)

    async def announce(self, ip: str, interface: str) -> None:
        ip = _normalise(ip)
        self._interfaces[ip] = interface
        self._log.info("would announce %s on %s", ip, interface)

    async def withdraw(self, ip: str) -> None:
        ip = _normalise(ip)
        if self._interfaces.pop(ip, None) is not None:
            self._log.info("would withdraw %s", ip)

    async def withdraw_all(self) -> None:
        for ip in list(self._interfaces):
            await self.withdraw(ip)

    async def refresh(self) -> None:
        self._log.debug("would refresh %d address(es)", len(self._interfaces))

    async def wait_claimed(self, ip: str, timeout: float) -> bool:
        """Nothing to listen on: hand over at once (the old, break-before-make behaviour)."""
        return False

    async def wait_silent(self, ip: str, interface: str, deadline: float) -> bool:
        """Nothing to probe: nobody else can answer for an address that is only logged."""
        return True

    async def reclaim(self) -> set[str]:
        return set()

    def close(self) -> None:
        """Nothing to release."""
