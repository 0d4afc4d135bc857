"""`scripts/playground`: the product on its embedded default, on one machine, in seconds.

Starts the Kubernetes API emulator on 127.0.0.1, installs the CRDs and the samples from
config/, runs the controller and one speaker against it, prints which Service got which address
from which pool and which node announces it, and writes a kubeconfig so that `kubectl` can add
more. Ctrl-C stops everything. Run as root, the speaker announces for real inside a network
namespace of its own (see playground_net); otherwise it only logs what it would announce. The
host's own interfaces are never touched.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from ccm.contract import names, views
from ccm.controller.manager import Controller
from ccm.controller.settings import ControllerSettings
from ccm.health.server import HealthServer
from ccm.kube.client import KubeClient
from ccm.kube.resources import NAMESPACES, NODES, SERVICES
from ccm.speaker.process import Speaker
from ccm.speaker.settings import SpeakerSettings
from devkit.apply import apply, load_manifests
from devkit.emulator import Emulator
from devkit.playground_net import PlaygroundNetwork, segments

ROOT = Path(__file__).resolve().parents[1]
PLAYGROUND_NODE = "playground-node"
ORDER = ["Namespace", "Secret", "IPPool", "L2Advertisement", "BGPPeer", "BGPAdvertisement"]


Row = tuple[str, str, str, str, str]


def service_row(obj: Mapping[str, Any], serve_unclassed: bool = True) -> Row | None:
    """(service, addresses, pool, node, state) for a LoadBalancer Service, None otherwise.

    Read with the controller's own rules (``ccm.contract.views``); `serve_unclassed` is the
    controller's setting, left at its default in the playground.
    """
    svc = views.service(obj)
    spec = svc.get("spec") or {}
    if spec.get("type") != "LoadBalancer":
        return None
    meta = views.meta_of(svc)
    ips = ", ".join(views.ingress_ips(svc)) or "-"
    pool = ",".join(views.allocated_from(svc)) or "-"
    node = views.annotations_of(svc).get(names.ANN_ANNOUNCING_NODE, "-")
    state = "pending"
    condition = views.allocated_condition(svc)
    if condition is not None:
        if condition.get("status") == "True":
            state = "allocated"
        else:
            state = f"{condition.get('reason')}: {condition.get('message')}"
    if not views.has_our_class(svc, serve_unclassed):
        state = f"not ours (class {spec.get('loadBalancerClass') or 'none'})"
    return (f"{meta.get('namespace')}/{meta.get('name')}", ips, pool, node, state)


def format_table(rows: list[Row]) -> str:
    header = ("SERVICE", "ADDRESSES", "POOL", "NODE", "STATE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = []
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4]))
                     + "  " + row[4])
    return "\n".join(lines)


async def _settle(client: KubeClient, limit: float) -> list[Row]:
    """The table once every Service is decided and nothing has changed for a second (the
    speaker joins after one Lease period, then records announcing nodes)."""
    deadline = time.monotonic() + limit
    last: list[Row] = []
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        listing = await client.list(SERVICES)
        rows = sorted(r for r in map(service_row, listing["items"]) if r is not None)
        if rows != last:
            last, stable_since = rows, time.monotonic()
        decided = all(r[4] != "pending" for r in rows)
        announced = any(r[3] != "-" for r in rows) or not rows
        if decided and announced and time.monotonic() - stable_since >= 1.0:
            break
        await asyncio.sleep(0.1)
    return last


async def run_playground(
    workdir: Path, *, port: int = 0, health_port: int = 8081, once: bool = False,
    settle_seconds: float = 15.0, network: str = "auto", out: TextIO = sys.stdout,
) -> int:
    if not (ROOT / "config" / "crd").is_dir():
        print("playground: config/ not found; run it from a source checkout", file=out)
        return 2
    log_file = workdir / "controller.log"
    handler = logging.FileHandler(log_file, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel(logging.INFO)

    emulator = Emulator(port=port, crd_paths=[ROOT / "config" / "crd"])
    await emulator.start()
    kubeconfig = emulator.write_kubeconfig(workdir / "kubeconfig")
    client = await KubeClient.connect(str(kubeconfig), qps=0)
    controller: Controller | None = None
    speaker: Speaker | None = None
    net: PlaygroundNetwork | None = None
    health: HealthServer | None = None
    try:
        for namespace in ("default", "kube-system"):
            with contextlib.suppress(Exception):
                await client.create(NAMESPACES, None, {"metadata": {"name": namespace}})
        documents = load_manifests([ROOT / "config" / "samples"])
        rank = {kind: i for i, kind in enumerate(ORDER)}
        skipped = []
        pool_specs = [d.get("spec") or {} for d in documents if d.get("kind") == "IPPool"
                      and not (d.get("spec") or {}).get("external")]
        for doc in sorted(documents, key=lambda d: rank.get(str(d.get("kind")), len(ORDER))):
            if doc.get("kind") == "IPPool" and (doc.get("spec") or {}).get("external"):
                # the sample IPAM is not on this machine; the playground stays off the network
                skipped.append(str(doc["metadata"]["name"]))
                continue
            await apply(client, doc)
        settings = ControllerSettings(
            kubeconfig=str(kubeconfig), namespace="kube-system", identity="playground",
            health_host="127.0.0.1", health_port=health_port, log_format="text",
        )
        controller = Controller(settings)
        health = HealthServer(controller, settings.health_host, health_port)
        try:
            await health.start()
        except OSError:
            health = HealthServer(controller, settings.health_host, 0)  # port taken: any port
            await health.start()
        await controller.start()
        await client.create(NODES, None, {"metadata": {"name": PLAYGROUND_NODE}})
        if network == "namespace" or (network == "auto" and PlaygroundNetwork.possible()):
            net = PlaygroundNetwork(workdir)
            net.build(segments(pool_specs))
            await net.start_speaker(emulator.port, PLAYGROUND_NODE)
        else:
            speaker = Speaker(SpeakerSettings(
                node_name=PLAYGROUND_NODE, kubeconfig=str(kubeconfig), namespace="kube-system",
                announcer="log", bgp=False, health_port=0, log_format="text",
            ))
            await speaker.start()
        rows = await _settle(client, settle_seconds)
        if once:
            print("playground: API emulator, controller and speaker on this machine", file=out)
        else:
            print(f"playground: API emulator at {emulator.url}", file=out)
        print(f"  pools and Services from {ROOT / 'config' / 'samples'}", file=out)
        if skipped:
            print(f"  (skipped external-IPAM pools, whose IPAM is not here: "
                  f"{', '.join(skipped)})", file=out)
        print(file=out)
        print(format_table(rows), file=out)
        if net is not None:
            await _show_neighbours(net, rows, out)
        if once:
            # everything stops on return: URLs and kubectl hints would point at nothing
            print(f"\ncontroller log:     {log_file}", file=out)
            print("(--once: everything has stopped again; without --once it keeps running, "
                  "for kubectl and the browser)", file=out)
            return 0
        print(f"\nstatus page:        {health.url}/", file=out)
        print(f"health and metrics: {health.url}/status  {health.url}/metrics", file=out)
        print(f"controller log:     {log_file}", file=out)
        print(f"try:  kubectl --kubeconfig {kubeconfig} get svc -A -w", file=out)
        print(f"      kubectl --kubeconfig {kubeconfig} get ippools", file=out)
        print("\nwatching for changes; Ctrl-C stops everything", file=out, flush=True)
        await _watch_until_interrupted(client, {r[0]: r for r in rows}, out)
        return 0
    finally:
        if net is not None:
            await net.close()
        if speaker is not None:
            await speaker.stop()
        if controller is not None:
            await controller.stop()
        if health is not None:
            await health.stop()
        await client.close()
        await emulator.stop()


async def _show_neighbours(net: PlaygroundNetwork, rows: list[Row], out: TextIO) -> None:
    """What the client namespace learnt from the speaker's ARP/NDP, once it has all of it."""
    wanted = {ip.strip() for row in rows if row[3] != "-" for ip in row[1].split(",")}
    deadline = time.monotonic() + 5
    learnt = net.neighbours()
    while not wanted <= set(learnt) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        learnt = net.neighbours()
    mac = net.node_mac()
    print(f"\nthe speaker runs in network namespace {net.node} (MAC {mac}) and announces "
          f"with ARP/NDP;\nnamespace {net.client} has learnt (ip -n {net.client} neigh):",
          file=out)
    for ip in sorted(wanted, key=lambda a: (":" in a, a)):
        print(f"  {ip:<20} -> {learnt.get(ip, 'not learnt')}", file=out)


async def _watch_until_interrupted(
    client: KubeClient, known: dict[str, Row], out: TextIO
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        listing = await client.list(SERVICES)
        for svc in listing["items"]:
            row = service_row(svc)
            if row is not None and known.get(row[0]) != row and row[4] != "pending":
                known[row[0]] = row
                print(f"{row[0]}: {row[1]} (pool {row[2]}, node {row[3]}) {row[4]}", file=out,
                      flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
    print("stopping", file=out)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/playground",
        description="vipam on this machine: API emulator, controller, speaker and the samples",
    )
    parser.add_argument("--workdir", default=".playground", help="kubeconfig and logs here")
    parser.add_argument("--port", default="0", help="emulator port (default: any free)")
    parser.add_argument("--health-port", default="8081", help="health server port")
    parser.add_argument("--once", action="store_true", help="print the result and exit")
    parser.add_argument(
        "--network", choices=("auto", "namespace", "none"), default="auto",
        help="namespace: the speaker announces with ARP/NDP inside network namespaces (root); "
        "none: it only logs; auto: namespace when running as root",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    return asyncio.run(
        run_playground(Path(args.workdir).resolve(), port=int(args.port),
                       health_port=int(args.health_port), once=bool(args.once),
                       network=str(args.network))
    )


if __name__ == "__main__":
    sys.exit(main())
