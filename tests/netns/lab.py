"""A disposable L2 segment of network namespaces: a bridge, a router and some nodes.

Topology (every namespace name starts with ``vp<pid>-<n>-`` so parallel runs never collide)::

    router (eth0 192.0.2.1/24, 2001:db8::1/64)      node1 (eth0 .2 / ::2)   node2 (.3 / ::3) ...
            |                                              |                  |
            +------------------ lan: br0 ------------------+------------------+

The router is set up as a router would be for address failover to work: it learns new
neighbour entries from gratuitous ARP (``arp_accept=1``) and from unsolicited neighbour
advertisements (``accept_untracked_na=1``, which Linux honours only with forwarding on).

Everything is removed by name (namespaces) and by pid (processes), never by process name.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
_counter = itertools.count(1)
T = TypeVar("T")


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def namespaces() -> set[str]:
    listing = run("ip", "-j", "netns", "list").stdout.strip()
    return {entry["name"] for entry in json.loads(listing or "[]")}


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str, poll: float = 0.01) -> T:
    """Poll until ``predicate`` returns a truthy value; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; an exited process awaiting its reaper (zombie) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in {"Z", "X"}


@dataclass
class Member:
    """A namespace attached to the segment through its ``eth0``."""

    name: str
    ipv4: str
    ipv6: str
    mac: str = ""


@dataclass
class Lab:
    prefix: str
    lan: str
    router: Member
    nodes: list[Member]
    processes: list[subprocess.Popen[Any]] = field(default_factory=list)
    inodes: dict[str, int] = field(default_factory=dict)  # of the namespaces we created
    hosts: dict[str, Member] = field(default_factory=dict)  # more members: name -> member

    @classmethod
    def create(cls, node_count: int = 2, prefix: str | None = None,
               hosts: dict[str, int] | None = None) -> Lab:
        """``hosts`` adds members that are neither router nor node: {name: host number},
        e.g. {"probe": 250} is ``<prefix>-probe`` at 192.0.2.250 and 2001:db8::fa."""
        prefix = prefix or f"vp{os.getpid()}-{next(_counter)}"
        router = Member(f"{prefix}-router", "192.0.2.1", "2001:db8::1")
        nodes = [
            Member(f"{prefix}-node{i}", f"192.0.2.{1 + i}", f"2001:db8::{1 + i:x}")
            for i in range(1, node_count + 1)
        ]
        extra = {
            name: Member(f"{prefix}-{name}", f"192.0.2.{number}", f"2001:db8::{number:x}")
            for name, number in (hosts or {}).items()
        }
        lab = cls(prefix=prefix, lan=f"{prefix}-lan", router=router, nodes=nodes, hosts=extra)
        try:
            lab._build()
        except BaseException:
            lab.destroy()
            raise
        return lab

    def members(self) -> list[Member]:
        return [self.router, *self.nodes, *self.hosts.values()]

    def all_namespaces(self) -> list[str]:
        """The segment, every member, and namespaces added later (``add_namespace``)."""
        named = [self.lan, *(member.name for member in self.members())]
        return named + [ns for ns in self.inodes if ns not in named]

    def add_namespace(self, ns: str) -> None:
        """Create ``ns`` (lo up, no DAD) and own it: ``destroy`` deletes it and its processes."""
        run("ip", "netns", "add", ns)
        self.inodes[ns] = os.stat(f"/run/netns/{ns}").st_ino
        self.sysctl(ns, "net.ipv6.conf.all.accept_dad", "0")
        self.sysctl(ns, "net.ipv6.conf.default.accept_dad", "0")
        run("ip", "-n", ns, "link", "set", "lo", "up")

    def _build(self) -> None:
        for ns in [self.lan, *(member.name for member in self.members())]:
            self.add_namespace(ns)
        run("ip", "-n", self.lan, "link", "add", "br0", "type", "bridge",
            "forward_delay", "0", "mcast_snooping", "0")
        run("ip", "-n", self.lan, "link", "set", "br0", "up")
        # router first, so the arp_accept/forwarding defaults also apply to its eth0
        self.sysctl(self.router.name, "net.ipv4.conf.all.arp_accept", "1")
        self.sysctl(self.router.name, "net.ipv4.conf.default.arp_accept", "1")
        self.sysctl(self.router.name, "net.ipv4.ip_forward", "1")
        self.sysctl(self.router.name, "net.ipv6.conf.all.forwarding", "1")
        self.sysctl(self.router.name, "net.ipv6.conf.default.accept_untracked_na", "1")
        for index, member in enumerate(self.members()):
            port = f"p{index}"
            run("ip", "-n", member.name, "link", "add", "eth0", "type", "veth",
                "peer", "name", port, "netns", self.lan)
            run("ip", "-n", self.lan, "link", "set", port, "master", "br0", "up")
            run("ip", "-n", member.name, "addr", "add", f"{member.ipv4}/24", "dev", "eth0")
            run("ip", "-n", member.name, "addr", "add", f"{member.ipv6}/64", "dev", "eth0",
                "nodad")
            run("ip", "-n", member.name, "link", "set", "eth0", "up")
            link = json.loads(run("ip", "-j", "-n", member.name, "link", "show", "eth0").stdout)
            member.mac = link[0]["address"]
        self.sysctl(self.router.name, "net.ipv6.conf.eth0.accept_untracked_na", "1")

    @staticmethod
    def sysctl(ns: str, key: str, value: str) -> None:
        run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{key}={value}")

    def spawn(self, ns: str, argv: list[str], **popen: Any) -> subprocess.Popen[Any]:
        """Start a process inside ``ns``; ``ip netns exec`` execs, so the pid is the process's."""
        process: subprocess.Popen[Any] = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv], **popen
        )
        self.processes.append(process)
        return process

    def neighbour(self, ip: str) -> str | None:
        """The MAC the router's neighbour table holds for ``ip`` (None if unresolved)."""
        entries = json.loads(
            run("ip", "-j", "-n", self.router.name, "neigh", "show", "to", ip, "dev", "eth0").stdout
            or "[]"
        )
        for entry in entries:
            if entry.get("dst") == ip and "lladdr" in entry:
                lladdr: str = entry["lladdr"]
                return lladdr
        return None

    def processes_inside(self) -> set[int]:
        """Pids of every process whose network namespace is one of ours, whoever started it.

        Deleting a namespace does not stop the processes in it, so this is how we find
        grandchildren (ExaBGP, its relay) that outlived their parent.
        """
        ours = set(self.inodes.values())
        found: set[int] = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.stat(entry / "ns" / "net").st_ino in ours:
                        found.add(int(entry.name))
        return found

    def neighbours(self) -> dict[str, str]:
        """The router's whole neighbour table on eth0: {address: MAC} for resolved entries."""
        entries = json.loads(
            run("ip", "-j", "-n", self.router.name, "neigh", "show", "dev", "eth0").stdout or "[]"
        )
        return {entry["dst"]: entry["lladdr"] for entry in entries if "lladdr" in entry}

    def destroy(self) -> set[int]:
        """Stop every process we started (by pid), then delete our namespaces (by name).

        Returns the pids of strays (processes still in our namespaces after our own children
        stopped): they are killed by pid, and the caller should treat them as a leak.
        """
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        strays = wait_quiet(self.processes_inside, timeout=2)
        for pid in strays:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        present = namespaces()
        for ns in self.inodes:  # only those we created: a name clash is not ours to delete
            if ns in present:
                run("ip", "netns", "del", ns, check=False)
        return strays


def wait_quiet(probe: Callable[[], set[int]], timeout: float) -> set[int]:
    """Give exiting processes (e.g. ExaBGP after its parent died) a moment to go."""
    deadline = time.monotonic() + timeout
    remaining = probe()
    while remaining and time.monotonic() < deadline:
        time.sleep(0.05)
        remaining = probe()
    return remaining


class Agent:
    """A speaker-side helper running inside a node namespace, driven by JSON lines."""

    def __init__(self, lab: Lab, node: Member) -> None:
        self.node = node
        self.process = lab.spawn(
            node.name,
            [sys.executable, "-m", "tests.netns.agent"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            bufsize=1,
        )
        self.call("ping")  # wait until it runs, so callers time the operation, not start-up

    @property
    def pid(self) -> int:
        return self.process.pid

    def call(self, op: str, **arguments: Any) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"agent in {self.node.name} exited ({self.process.poll()})")
        reply = json.loads(line)
        if not reply["ok"]:
            raise RuntimeError(f"agent {op} failed: {reply['error']}")
        return reply.get("result")

    def kill(self) -> None:
        """SIGKILL: the speaker gets no chance to clean up, as after an OOM kill or node crash."""
        self.process.kill()
        self.process.wait()

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=10)


def addresses(ns: str) -> set[str]:
    """Every address configured in ``ns``."""
    links = json.loads(run("ip", "-j", "-n", ns, "addr", "show").stdout)
    return {info["local"] for link in links for info in link.get("addr_info", [])}


