"""Controller container start to `/readyz`, for one or more image builds.

Run (as root, after `scripts/image build`):
``.venv/bin/python -m bench.image_startup --image pyc=localhost/vipam:ci --image src=TAG``.
Prints one JSON document, then a table.

Each run starts the controller image exactly as `config/controller/deployment.yaml` does
(read-only root filesystem, UID 65532, no capabilities, a 16 MiB tmpfs on /tmp, the memory
limit), in-cluster configuration from a mounted ServiceAccount token, host network, against a
real kube-apiserver (devkit.apiserver) with config/ applied. It measures from just before
`podman run` to the first 200 from `/readyz` (leader, caches synced, assignments restored), and
from the container's own start (podman's StartedAt) to that moment, which leaves out podman's
fixed cost of creating the container. Images are interleaved run by run, so that load from other
processes on the machine falls on all of them alike. Each run uses its own Lease, so no run waits
for the previous leader's Lease to expire.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devkit.apiserver import ApiServer, free_port
from tests.image.containers import (
    REPO,
    Containers,
    http_status,
    in_cluster_flags,
    podman,
    security_flags,
    service_account_dir,
)


def _started_at(container: str) -> float:
    """podman's StartedAt as a Unix time (nanosecond digits trimmed for fromisoformat)."""
    layout = '{{.State.StartedAt.Format "2006-01-02T15:04:05.000000Z07:00"}}'
    text = podman("inspect", "--format", layout, container).stdout.strip()
    return datetime.datetime.fromisoformat(text).timestamp()


def one_run(containers: Containers, sa_dir: Path, port: int, lease: str,
            timeout: float = 60.0) -> dict[str, float]:
    health = free_port()
    args = [
        "--network", "host", *security_flags("controller/deployment.yaml"),
        *in_cluster_flags(sa_dir, "127.0.0.1", port),
        "--env", "POD_NAMESPACE=kube-system", "--env", f"POD_NAME={lease}",
    ]
    command = ["controller", "--health-host", "127.0.0.1", "--health-port", str(health),
               "--lease-name", lease]
    begun_wall, begun = time.time(), time.monotonic()
    container = containers.start(args, command, prefix="vipam-bench")
    try:
        while time.monotonic() - begun < timeout:
            status, _ = http_status(f"http://127.0.0.1:{health}/readyz", timeout=0.5)
            if status == 200:
                ready, ready_wall = time.monotonic(), time.time()
                break
            time.sleep(0.01)
        else:
            raise RuntimeError(f"not ready after {timeout}s:\n{containers.logs(container)}")
        return {
            "run_to_ready_s": ready - begun,
            "start_to_ready_s": ready_wall - _started_at(container),
            "create_s": _started_at(container) - begun_wall,
        }
    finally:
        containers.stop(container)
        podman("rm", "--force", container, check=False)
        containers.started.remove(container)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", action="append", required=True,
                        help="LABEL=TAG (repeatable), e.g. pyc=localhost/vipam:ci")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    images = dict(item.split("=", 1) for item in args.image)
    samples: dict[str, list[dict[str, float]]] = {label: [] for label in images}
    with tempfile.TemporaryDirectory(prefix="vipam-bench-image-") as tmp:
        server = ApiServer(Path(tmp) / "apiserver")
        server.start()
        try:
            server.kubectl("apply", "-k", str(REPO / "config"))
            server.kubectl("wait", "--for", "condition=Established", "crd", "--all")
            token = server.create_token("vipam-controller", "kube-system")
            sa_dir = service_account_dir(Path(tmp) / "sa", token, server.ca_file, "kube-system")
            for run in range(args.runs):
                for label, tag in images.items():
                    containers = Containers(tag)
                    samples[label].append(
                        one_run(containers, sa_dir, server.port, f"bench-{label}-{run}"))
        finally:
            server.stop()
    result = {
        "runs": args.runs,
        "images": images,
        "results": {
            label: {
                key: {
                    "median": statistics.median(s[key] for s in runs),
                    "min": min(s[key] for s in runs),
                    "max": max(s[key] for s in runs),
                }
                for key in runs[0]
            }
            for label, runs in samples.items()
        },
        "samples": samples,
    }
    print(json.dumps(result, indent=1))
    print(f"\n{'image':<10} {'measure':<18} {'median':>8} {'min':>8} {'max':>8}")
    for label, measures in result["results"].items():
        for key, stats in measures.items():
            print(f"{label:<10} {key:<18} {stats['median']:8.2f} {stats['min']:8.2f} "
                  f"{stats['max']:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
