"""A BIRD 2 peer in the router namespace: own config, control socket and pidfile per test."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.netns.lab import Lab, Member, run, wait_for


@dataclass
class BirdNeighbor:
    name: str
    node: Member
    asn: int
    over_ipv6: bool = False  # the session's transport; both address families ride on it


def bird_config(router: Member, local_asn: int, neighbors: list[BirdNeighbor], password: str | None,
                log_path: Path, hold: int = 9, ecmp: bool = False) -> str:
    """``ecmp``: install the BGP routes in the kernel, one multipath route per prefix when
    several neighbours offer equal paths (what a router in front of a cluster does)."""
    lines = [
        f'log "{log_path}" all;',
        f"router id {router.ipv4};",
        "protocol device {}",
        # the segment's prefixes, so iBGP's recursive next hops resolve
        'protocol direct { ipv4; ipv6; interface "eth0"; }',
    ]
    if ecmp:
        lines += [
            "protocol kernel { ipv4 { export where source = RTS_BGP; }; merge paths on; }",
            "protocol kernel { ipv6 { export where source = RTS_BGP; }; merge paths on; }",
        ]
    for neighbor in neighbors:
        local, remote = (
            (router.ipv6, neighbor.node.ipv6) if neighbor.over_ipv6
            else (router.ipv4, neighbor.node.ipv4)
        )
        lines += [
            f"protocol bgp {neighbor.name} {{",
            f"    local {local} as {local_asn};",
            f"    neighbor {remote} as {neighbor.asn};",
            f"    hold time {hold};",
            "    connect delay time 1;",
            "    connect retry time 1;",
            "    error wait time 1, 2;",
        ]
        if password is not None:
            lines.append(f'    password "{password}";')
        lines += [
            "    ipv4 { import all; export none; };",
            "    ipv6 { import all; export none; };",
            "}",
        ]
    return "\n".join(lines) + "\n"


class Bird:
    def __init__(self, lab: Lab, workdir: Path, local_asn: int, neighbors: list[BirdNeighbor],
                 password: str | None = None, hold: int = 9, ecmp: bool = False) -> None:
        self.workdir = workdir
        self.socket = workdir / "bird.ctl"
        self.pidfile = workdir / "bird.pid"
        config = workdir / "bird.conf"
        config.write_text(
            bird_config(lab.router, local_asn, neighbors, password, workdir / "bird.log", hold,
                        ecmp)
        )
        run("bird", "-p", "-c", str(config))  # parse only: a config error fails here, clearly
        self.process = lab.spawn(
            lab.router.name,
            ["bird", "-f", "-c", str(config), "-s", str(self.socket), "-P", str(self.pidfile)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.socket.exists, timeout=5, what="BIRD control socket")

    @property
    def pid(self) -> int:
        return self.process.pid

    def birdc(self, *command: str) -> str:
        return run("birdc", "-s", str(self.socket), *command).stdout

    def established(self, protocol: str) -> bool:
        return "Established" in self.birdc("show", "protocols", protocol)

    def routes(self) -> dict[str, dict[str, str]]:
        """``show route all`` as {prefix: {attribute: value}} (BGP.* attributes and ``via``)."""
        routes: dict[str, dict[str, str]] = {}
        current: dict[str, str] | None = None
        for line in self.birdc("show", "route", "all").splitlines():
            head = re.match(r"^([0-9a-f:.]+/\d+)\s+(\S+)", line)
            if head:
                current = routes.setdefault(head[1], {"dest": head[2]})
                continue
            attribute = re.match(r"^\s+(BGP\.\w+):\s*(.*)$", line)
            if attribute and current is not None:
                current[attribute[1]] = attribute[2].strip()
            via = re.match(r"^\s+via (\S+)", line)
            if via and current is not None:
                current["via"] = via[1]
        return routes

    def bgp_routes(self) -> dict[str, dict[str, str]]:
        return {prefix: attrs for prefix, attrs in self.routes().items() if "BGP.origin" in attrs}
