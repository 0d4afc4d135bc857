"""BGPSpeaker against a real ExaBGP on loopback, no root needed.

The peer is a loopback port nobody listens on, so no session comes up; what is under test is
the speaker's side: the API connection through the relay, acknowledgements, the supervisor's
restart with replay, and a clean stop. The session side is covered with BIRD in tests/netns.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ccm.speaker.bgp import BGPError, BGPRefused, BGPSpeaker, Peer


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def speaker(tmp_path: Path) -> AsyncIterator[BGPSpeaker]:
    bgp = BGPSpeaker(router_id="192.0.2.2", workdir=str(tmp_path / "bgp"), backoff_initial=0.1)
    await bgp.start([Peer("127.0.0.1", 64512, 64512, port=_unused_port())])
    try:
        yield bgp
    finally:
        await bgp.stop()


async def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` (a process's state has no event to await)."""
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def test_announce_and_withdraw_are_acknowledged(speaker: BGPSpeaker) -> None:
    await speaker.announce("203.0.113.10", "192.0.2.2", ["64512:100"], 200)
    await speaker.announce("2001:db8:1::10/128", "2001:db8::2")
    assert speaker.announced() == {"203.0.113.10/32", "2001:db8:1::10/128"}
    assert speaker.routes()["203.0.113.10/32"].local_pref == 200

    held = "\n".join(await speaker.exabgp_routes())
    assert "203.0.113.10/32" in held
    assert "2001:db8:1::10/128" in held
    assert "local-preference 200" in held
    assert "64512:100" in held

    await speaker.withdraw("203.0.113.10")
    await speaker.withdraw("198.51.100.1")  # never announced: nothing to do
    assert speaker.announced() == {"2001:db8:1::10/128"}
    held = "\n".join(await speaker.exabgp_routes())
    assert "203.0.113.10/32" not in held
    assert "2001:db8:1::10/128" in held


async def test_exabgp_refusal_is_reported_and_not_recorded(speaker: BGPSpeaker) -> None:
    # a peer selector naming no configured neighbour: ExaBGP answers "error"
    with pytest.raises(BGPRefused, match="refused"):
        await speaker.announce("203.0.113.10", "192.0.2.2", peers=["198.51.100.7"])
    assert speaker.announced() == set()


async def test_killed_exabgp_is_restarted_and_gets_the_routes_again(
    speaker: BGPSpeaker, tmp_path: Path
) -> None:
    await speaker.announce("203.0.113.10", "192.0.2.2")
    first = speaker.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    await _wait(lambda: speaker.pid not in (None, first))
    assert speaker.restarts == 1
    # announcing while ExaBGP reconnects is recorded, and sent on (re)connection
    await speaker.announce("203.0.113.11", "192.0.2.2")
    routes = await _exabgp_prefixes(speaker)
    assert routes == {"203.0.113.10/32", "203.0.113.11/32"}


async def _exabgp_prefixes(speaker: BGPSpeaker) -> set[str]:
    """Prefixes the running ExaBGP holds, asked of ExaBGP itself (not our records)."""
    async with asyncio.timeout(10):
        while True:
            try:
                lines = await speaker.exabgp_routes()
                break
            except BGPError:  # still reconnecting
                await asyncio.sleep(0.05)
    return {word for line in lines for word in line.split() if word.endswith("/32")}


async def test_stop_ends_exabgp_and_is_final(tmp_path: Path) -> None:
    bgp = BGPSpeaker(router_id="192.0.2.2")
    await bgp.start([Peer("127.0.0.1", 64512, 64513, port=_unused_port())])
    pid = bgp.pid
    assert pid is not None
    await bgp.announce("203.0.113.10", "192.0.2.2")
    await bgp.stop()
    assert bgp.pid is None
    assert bgp.announced() == set()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_no_peers_records_without_spawning(tmp_path: Path) -> None:
    bgp = BGPSpeaker(workdir=str(tmp_path / "bgp"))
    await bgp.start([])
    await bgp.announce("203.0.113.10", "192.0.2.2")
    assert bgp.pid is None
    assert bgp.announced() == {"203.0.113.10/32"}
    await bgp.stop()


async def test_lost_relay_restarts_exabgp_with_the_routes(speaker: BGPSpeaker) -> None:
    """ExaBGP that cannot hear us could not withdraw: it is replaced, routes replayed."""
    await speaker.announce("203.0.113.10", "192.0.2.2")
    exabgp = speaker.pid
    assert exabgp is not None
    children = (await asyncio.to_thread(_children, exabgp)).split()
    assert len(children) == 1  # the relay
    os.kill(int(children[0]), signal.SIGKILL)
    await _wait(lambda: speaker.pid not in (None, exabgp))
    assert speaker.restarts == 1
    assert await _exabgp_prefixes(speaker) == {"203.0.113.10/32"}


def _children(pid: int) -> str:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text()


async def test_a_workdir_too_long_for_a_socket_is_refused_clearly(tmp_path: Path) -> None:
    bgp = BGPSpeaker(workdir=str(tmp_path / ("d" * 120)))
    with pytest.raises(BGPError, match="too long"):
        await bgp.start([])


async def test_changing_peers_restarts_exabgp_with_the_routes(
    speaker: BGPSpeaker, tmp_path: Path
) -> None:
    await speaker.announce("203.0.113.10", "192.0.2.2")
    before = speaker.pid
    first = Peer("127.0.0.1", 64512, 64512, port=_unused_port())
    second = Peer("127.0.0.2", 64512, 64512, port=_unused_port())
    await speaker.set_peers([first, second])
    assert speaker.pid not in (None, before)
    held = await speaker.exabgp_routes()
    # one adj-RIB-out line per peer, each with the replayed route
    assert len([line for line in held if "203.0.113.10/32" in line]) == 2
    await speaker.set_peers([first, second])  # unchanged: nothing restarts
    assert speaker.pid is not None


async def test_two_sessions_to_one_address_are_refused(tmp_path: Path) -> None:
    bgp = BGPSpeaker(workdir=str(tmp_path / "bgp"))
    twice = [Peer("127.0.0.1", 64512, 64512, port=port) for port in (1179, 1180)]
    with pytest.raises(ValueError, match="one session per peer address"):
        await bgp.start(twice)


async def test_stopping_exabgp_never_swallows_the_callers_cancellation() -> None:
    """Speaker.stop() cancels its reconcile task and waits for it. When that task was in the
    middle of stopping ExaBGP (peers changed), cancelling it must end it: waiting for the
    supervisor may not absorb the CancelledError, or the task loops on and stop() waits
    forever (seen as a hang of tests/integration/rbac on a real API server)."""
    bgp = BGPSpeaker(router_id="127.0.0.1")
    supervisor = asyncio.create_task(asyncio.sleep(30))
    bgp._supervisor = supervisor
    stopping = asyncio.create_task(bgp._shutdown_exabgp(withdraw=False))
    await asyncio.sleep(0.05)
    stopping.cancel()
    try:
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(stopping, 2)
    finally:
        supervisor.cancel()
