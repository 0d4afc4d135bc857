"""The playground's network when run as root: a node and a client namespace on one link.

The speaker runs inside the node namespace with the real announcer (address on the interface,
gratuitous ARP / unsolicited NA) and reaches the API emulator in the host namespace through a
Unix socket relay. The client namespace stands for the rest of the LAN: it learns the VIPs from
the announcements (arp_accept, accept_untracked_na), so its neighbour table shows which MAC
answers for each address. Nothing is added to the host's own interfaces, and everything is
removed again by name and pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import netaddr

from devkit.relay import unix_to_tcp

RELAY_PORT = 6443


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def segments(pool_specs: Iterable[dict[str, Any]]) -> list[netaddr.IPNetwork]:
    """The /24 (IPv4) or /64 (IPv6) around every pool entry: the link's subnets."""
    found: list[netaddr.IPNetwork] = []
    for spec in pool_specs:
        for entry in spec.get("addresses") or []:
            first = str(entry).replace(" ", "").split("-")[0].split("/")[0]
            address = netaddr.IPAddress(first)
            net = netaddr.IPNetwork(f"{address}/{24 if address.version == 4 else 64}").cidr
            if net not in found:
                found.append(net)
    return found


def _host(net: netaddr.IPNetwork, offset: int) -> str:
    """A host address near the top of `net`, far from the lowest-first VIPs."""
    return f"{netaddr.IPAddress(net.last - offset, net.version)}/{net.prefixlen}"


class PlaygroundNetwork:
    def __init__(self, workdir: Path) -> None:
        prefix = f"vipam-pg{os.getpid()}"
        self.node = f"{prefix}-node"
        self.client = f"{prefix}-client"
        self.workdir = workdir
        self.processes: list[subprocess.Popen[bytes]] = []
        self._server: asyncio.Server | None = None
        self._created: list[str] = []
        self.socket_path = workdir / "api.sock"  # the relay's end in the host namespace

    @staticmethod
    def possible() -> bool:
        return os.geteuid() == 0 and shutil.which("ip") is not None

    def build(self, nets: list[netaddr.IPNetwork]) -> None:
        for ns in (self.node, self.client):
            _ip("netns", "add", ns)
            self._created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        for key, value in (("net.ipv4.conf.all.arp_accept", "1"),
                           ("net.ipv4.conf.default.arp_accept", "1"),
                           ("net.ipv6.conf.all.forwarding", "1"),
                           ("net.ipv6.conf.default.accept_untracked_na", "1")):
            _ip("netns", "exec", self.client, "sysctl", "-q", "-w", f"{key}={value}")
        _ip("-n", self.node, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
            "netns", self.client)
        for ns, offset in ((self.node, 5), (self.client, 4)):
            _ip("netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0")
            for net in nets:
                extra = ["nodad"] if net.version == 6 else []
                _ip("-n", ns, "addr", "add", _host(net, offset), "dev", "eth0", *extra)
            _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("netns", "exec", self.client, "sysctl", "-q", "-w",
            "net.ipv6.conf.eth0.accept_untracked_na=1", check=False)

    async def start_speaker(self, emulator_port: int, node_name: str) -> None:
        socket_path = str(self.socket_path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(socket_path)
        self._server = await unix_to_tcp(socket_path, "127.0.0.1", emulator_port)
        kubeconfig = self.workdir / "kubeconfig-node"
        kubeconfig.write_text(json.dumps({  # JSON is YAML: kubeconfig loaders read it
            "apiVersion": "v1", "kind": "Config", "current-context": "node",
            "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{RELAY_PORT}"}}],
            "users": [{"name": "u", "user": {"token": "playground"}}],
            "contexts": [{"name": "node", "context": {"cluster": "c", "user": "u"}}],
        }))
        self._spawn(socket_path, kubeconfig, node_name)

    def _spawn(self, socket_path: str, kubeconfig: Path, node_name: str) -> None:
        log = (self.workdir / "speaker.log").open("wb")
        exec_in = ["ip", "netns", "exec", self.node, sys.executable, "-m"]
        self.processes.append(subprocess.Popen(
            [*exec_in, "devkit.relay", f"127.0.0.1:{RELAY_PORT}", socket_path],
            stdout=subprocess.DEVNULL, stderr=log,
        ))
        self.processes.append(subprocess.Popen(
            [*exec_in, "ccm", "speaker", "--node-name", node_name, "--kubeconfig",
             str(kubeconfig), "--namespace", "kube-system", "--announcer", "kernel", "--no-bgp",
             "--health-port", "0", "--log-format", "text"],
            stdout=log, stderr=log,
        ))
        log.close()

    def neighbours(self) -> dict[str, str]:
        """What the client namespace has learnt: address -> MAC."""
        entries = json.loads(_ip("-j", "-n", self.client, "neigh", "show", "dev", "eth0") or "[]")
        return {e["dst"]: e["lladdr"] for e in entries if "lladdr" in e}

    def node_mac(self) -> str:
        link = json.loads(_ip("-j", "-n", self.node, "link", "show", "eth0"))
        return str(link[0]["address"])

    async def close(self) -> None:
        for process in reversed(self.processes):  # the speaker first: it withdraws its VIPs
            if process.poll() is None:
                process.terminate()
                try:
                    await asyncio.to_thread(process.wait, 10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    await asyncio.to_thread(process.wait)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
        # asyncio leaves a Unix socket's file behind when its server closes
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        for ns in self._created:
            _ip("netns", "del", ns, check=False)
        self._created.clear()
