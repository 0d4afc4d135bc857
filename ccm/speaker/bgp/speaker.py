"""Announce service addresses to BGP peers through a supervised ExaBGP process.

The speaker owns the desired state (``_routes``); ExaBGP is a replaceable executor of it. ExaBGP
runs as our child (restarted with exponential backoff if it dies) and talks to us through its
process API, relayed over a Unix socket (see ``relay``). Whenever a relay connects — first
start, ExaBGP restart — every route is replayed, so a crash loses nothing we meant to announce.
``announce``/``withdraw`` made while ExaBGP is restarting are recorded and sent on reconnect.

If the speaker is killed, the relay sees its socket close and tells ExaBGP to shut down, so
the peers drop our routes at once: a dead speaker never keeps attracting traffic. A clean
``stop`` withdraws every route before stopping ExaBGP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccm.speaker.bgp.config import Peer, Route, announce_command, render_config, withdraw_command

log = logging.getLogger(__name__)


class BGPError(RuntimeError):
    """ExaBGP could not be reached, or refused a command."""


class BGPRefused(BGPError):
    """ExaBGP answered "error": the command itself is wrong (e.g. names no configured peer)."""


@dataclass
class _Pending:
    """A command waiting for ExaBGP's answer, and the output lines it produced meanwhile."""

    answer: asyncio.Future[str]
    output: list[str] = field(default_factory=list)


_ANSWERS = frozenset({"done", "error", "shutdown"})
#: sun_path holds 108 bytes including the terminating NUL
_MAX_SOCKET_PATH = 107


class BGPSpeaker:
    """Announces /32 and /128 routes for service addresses to a set of BGP peers."""

    def __init__(
        self,
        *,
        router_id: str | None = None,
        workdir: str | None = None,
        exabgp_argv: Sequence[str] = (sys.executable, "-m", "exabgp"),
        command_timeout: float = 5.0,
        connect_timeout: float = 20.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        stable_after: float = 30.0,
        exabgp_user: str = "nobody",
    ) -> None:
        self.router_id = router_id
        self.exabgp_argv = tuple(exabgp_argv)
        self.command_timeout = command_timeout
        self.connect_timeout = connect_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        #: the user ExaBGP drops to after start when run as root (it refuses to stay root;
        #: "root" keeps it root)
        self.exabgp_user = exabgp_user
        #: how many times ExaBGP died and was started again
        self.restarts = 0
        self._given_workdir = workdir
        self._workdir: Path | None = None
        self._peers: tuple[Peer, ...] = ()
        self._routes: dict[str, Route] = {}
        self._peer_states: dict[str, str] = {}
        self._process: asyncio.subprocess.Process | None = None
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()
        self._acks: deque[_Pending] = deque()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    # -- public API -------------------------------------------------------------------------

    def announced(self) -> set[str]:
        """Prefixes we announce (or will, as soon as ExaBGP is connected)."""
        return set(self._routes)

    def routes(self) -> dict[str, Route]:
        return dict(self._routes)

    def peer_states(self) -> dict[str, str]:
        """Last session state ExaBGP reported per peer address ("up", "down", "connected")."""
        return dict(self._peer_states)

    @property
    def pid(self) -> int | None:
        """ExaBGP's pid while it runs."""
        return self._process.pid if self._process and self._process.returncode is None else None

    async def start(self, peers: Iterable[Peer]) -> None:
        """Start ExaBGP for ``peers`` and wait until it is connected to us.

        With no peers nothing is spawned; routes are still recorded, for a later ``set_peers``.
        """
        if self._supervisor is not None:
            raise RuntimeError("BGPSpeaker already started")
        self._stopping = False
        self._peers = tuple(peers)
        render_config(self._peers, ["relay"])  # refuse a configuration ExaBGP would refuse
        self._workdir = Path(self._given_workdir or tempfile.mkdtemp(prefix="vipam-bgp-"))
        self._workdir.mkdir(parents=True, exist_ok=True)
        if len(self._socket_path.encode()) > _MAX_SOCKET_PATH:
            raise BGPError(f"workdir too long for a Unix socket path: {self._workdir}")
        self._server = await asyncio.start_unix_server(self._accept, path=self._socket_path)
        if self._peers:
            self._supervisor = asyncio.create_task(self._supervise(), name="exabgp-supervisor")
            await self._wait_connected()
        else:
            self._supervisor = asyncio.create_task(asyncio.sleep(0), name="exabgp-idle")

    async def set_peers(self, peers: Iterable[Peer]) -> None:
        """Change the peer set. ExaBGP is restarted with the new configuration (sessions to
        unchanged peers reset too), and every route is replayed."""
        new = tuple(peers)
        if new == self._peers:
            return
        render_config(new, ["relay"])  # refuse a configuration ExaBGP would refuse, up front
        await self._shutdown_exabgp(withdraw=False)
        self._peers = new
        self._peer_states.clear()
        if new:
            self._stopping = False
            self._supervisor = asyncio.create_task(self._supervise(), name="exabgp-supervisor")
            await self._wait_connected()

    async def announce(
        self,
        prefix: str,
        next_hop: str | None = None,
        communities: Iterable[str] = (),
        local_pref: int | None = None,
        peers: Iterable[str] = (),
    ) -> None:
        """Announce ``prefix`` (an address means its /32 or /128) with these attributes.

        ``next_hop`` None means ExaBGP's "self" (the session's local address: right only when
        the session and the prefix share a family). ``peers`` limits the announcement to those
        peer addresses; empty means every peer. Announcing again replaces the attributes.
        """
        route = Route(prefix, next_hop, tuple(communities), local_pref, tuple(peers))
        previous = self._routes.get(route.prefix)
        if previous == route:
            return
        self._routes[route.prefix] = route
        if not self._connected.is_set():
            return  # replayed when ExaBGP (re)connects
        try:
            if previous is not None and previous.peers != route.peers:
                await self._command(withdraw_command(previous))
            await self._command(announce_command(route))
        except BGPRefused:
            if self._routes.get(route.prefix) == route:
                del self._routes[route.prefix]
            raise
        except BGPError as exc:
            # the link to ExaBGP broke: a fresh ExaBGP is coming and gets the route on replay
            log.warning("announce %s deferred to ExaBGP's restart: %s", route.prefix, exc)

    async def withdraw(self, prefix: str) -> None:
        """Withdraw ``prefix`` from every peer it was announced to; unknown prefixes are a no-op."""
        route = self._routes.pop(Route(prefix).prefix, None)
        if route is None or not self._connected.is_set():
            return
        try:
            await self._command(withdraw_command(route))
        except BGPRefused:
            raise
        except BGPError as exc:
            # the link broke; ExaBGP is being replaced, and the new one never gets this route
            log.warning("withdraw %s completed by ExaBGP's restart: %s", route.prefix, exc)

    async def withdraw_all(self) -> None:
        for prefix in list(self._routes):
            await self.withdraw(prefix)

    async def stop(self) -> None:
        """Withdraw everything, stop ExaBGP (which closes the sessions) and clean up."""
        await self._shutdown_exabgp(withdraw=True)
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        if self._workdir is not None and self._given_workdir is None:
            shutil.rmtree(self._workdir, ignore_errors=True)
        self._workdir = None

    # -- ExaBGP process ---------------------------------------------------------------------

    @property
    def _socket_path(self) -> str:
        assert self._workdir is not None
        return str(self._workdir / "api.sock")

    def _write_config(self) -> Path:
        assert self._workdir is not None
        relay = [sys.executable, "-m", "ccm.speaker.bgp.relay", self._socket_path]
        path = self._workdir / "exabgp.conf"
        path.write_text(render_config(self._peers, relay, self.router_id))
        return path

    def _environment(self) -> dict[str, str]:
        assert self._workdir is not None
        env = dict(os.environ)
        env.update(
            {
                "exabgp_api_cli": "false",  # no named-pipe CLI: we are the only client
                "exabgp_api_ack": "true",
                "exabgp_daemon_daemonize": "false",
                # start our relay before dropping to exabgp_user, so it has the speaker's rights
                "exabgp_daemon_drop": "false",
                "exabgp_daemon_user": self.exabgp_user,
                "exabgp_log_destination": "stdout",
                "exabgp_log_short": "true",
                # session changes reach us as API events; keep the file to what went wrong
                "exabgp_log_level": "WARNING",
                "EXABGP_ENVFILE": str(self._workdir / "none.env"),
            }
        )
        return env

    async def _supervise(self) -> None:
        backoff = self.backoff_initial
        while not self._stopping:
            config = self._write_config()
            started = time.monotonic()
            # Output goes to a file, not a pipe to us, so ExaBGP's logging never depends on the
            # speaker being alive to read it (writes to a pipe without a reader fail).
            with self._log_path.open("wb") as output:
                self._process = await asyncio.create_subprocess_exec(
                    *self.exabgp_argv,
                    "server",
                    str(config),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=output,
                    stderr=asyncio.subprocess.STDOUT,
                    env=self._environment(),
                )
            log.info("started ExaBGP (pid %d) for %d peer(s)", self._process.pid, len(self._peers))
            returncode = await self._process.wait()
            self._disconnected()
            if self._stopping:
                return
            self.restarts += 1
            if time.monotonic() - started > self.stable_after:
                backoff = self.backoff_initial
            log.error(
                "ExaBGP exited with %s; restarting in %.1fs. Last output:\n%s",
                returncode,
                backoff,
                self.last_output(),
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_max)

    @property
    def _log_path(self) -> Path:
        assert self._workdir is not None
        return self._workdir / "exabgp.log"

    def last_output(self, lines: int = 30) -> str:
        """The tail of ExaBGP's output (for error messages and /status)."""
        if self._workdir is None:
            return ""
        try:
            text = self._log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def _shutdown_exabgp(self, *, withdraw: bool) -> None:
        if withdraw and self._connected.is_set():
            for route in list(self._routes.values()):
                with contextlib.suppress(BGPError):
                    await self._command(withdraw_command(route))
        if withdraw:
            self._routes.clear()
        self._stopping = True
        process = self._process
        if process is not None and process.returncode is None:
            process.terminate()  # ExaBGP sends a Cease NOTIFICATION to each peer
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._supervisor is not None:
            # wait for the supervisor to see ExaBGP gone, without awaiting it directly: a
            # CancelledError raised here may be our caller's own (Speaker.stop cancelling a
            # reconcile), and absorbing it would keep that task alive and stop() waiting
            await asyncio.wait([self._supervisor])
            self._supervisor = None
        self._process = None
        self._disconnected()

    # -- API connection ---------------------------------------------------------------------

    async def _wait_connected(self) -> None:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout=self.connect_timeout)
        except TimeoutError as exc:
            raise BGPError(
                "ExaBGP did not connect to the speaker in time. Last output:\n"
                + self.last_output()
            ) from exc

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:
            self._writer.close()
        self._fail_pending(BGPError("ExaBGP API connection replaced"))
        self._writer = writer
        self._spawn(self._read_answers(reader, writer))
        try:
            async with self._lock:
                for route in list(self._routes.values()):
                    await self._send(announce_command(route))
                self._connected.set()
        except BGPError as exc:
            # ExaBGP went away mid-replay; the next connection replays again
            log.warning("replaying routes to ExaBGP failed: %s", exc)
            return
        log.info("ExaBGP connected; replayed %d route(s)", len(self._routes))

    async def _read_answers(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        async for raw in reader:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            if line.startswith("{"):
                self._event(line)
            elif not self._acks:
                log.debug("unexpected ExaBGP output: %s", line)
            elif line in _ANSWERS:
                pending = self._acks.popleft()
                if not pending.answer.done():
                    pending.answer.set_result(line)
            else:
                self._acks[0].output.append(line)
        if self._writer is writer:
            self._disconnected()
            self._restart_exabgp("its API connection closed")

    def _restart_exabgp(self, why: str) -> None:
        """ExaBGP without a link to us would keep announcing routes we can no longer withdraw:
        stop it (its peers drop our routes) and let the supervisor start a fresh one."""
        process = self._process
        if self._stopping or process is None or process.returncode is not None:
            return
        log.warning("restarting ExaBGP (pid %d): %s", process.pid, why)
        process.terminate()

    def _event(self, line: str) -> None:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            message = json.loads(line)
            if message.get("type") == "state":
                neighbor = message["neighbor"]
                self._peer_states[neighbor["address"]["peer"]] = neighbor["state"]
                log.info("BGP peer %s is %s", neighbor["address"]["peer"], neighbor["state"])

    def _disconnected(self) -> None:
        self._connected.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._fail_pending(BGPError("ExaBGP API connection lost"))

    def _fail_pending(self, error: BGPError) -> None:
        while self._acks:
            future = self._acks.popleft().answer
            if not future.done():
                future.set_exception(error)

    async def exabgp_routes(self) -> list[str]:
        """What the running ExaBGP holds to send (its adj-RIB-out), one line per route.

        For diagnostics (/status) and tests: the ground truth behind ``announced()``.
        """
        if not self._connected.is_set():
            raise BGPError("ExaBGP is not connected")
        return await self._command("show adj-rib out extensive")

    async def _command(self, line: str) -> list[str]:
        async with self._lock:
            return await self._send(line)

    async def _send(self, line: str) -> list[str]:
        """Write one command; wait for ExaBGP's answer ("done"/"error"); return its output."""
        writer = self._writer
        if writer is None:
            raise BGPError("ExaBGP is not connected")
        pending = _Pending(asyncio.get_running_loop().create_future())
        self._acks.append(pending)
        writer.write(line.encode() + b"\n")
        await writer.drain()
        try:
            answer = await asyncio.wait_for(pending.answer, timeout=self.command_timeout)
        except TimeoutError as exc:
            # an ExaBGP that stopped answering is as good as unreachable: replace it
            self._restart_exabgp(f"no answer within {self.command_timeout}s")
            raise BGPError(f"no answer from ExaBGP to {line!r}") from exc
        if answer == "error":
            raise BGPRefused(f"ExaBGP refused {line!r}")
        if answer != "done":
            raise BGPError(f"ExaBGP answered {answer!r} to {line!r}")
        return pending.output

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
