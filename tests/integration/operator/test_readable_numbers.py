"""`kubectl get ippools` on a real API server, with a controller process writing pool status.

An IPv6 /64 holds 18446744073709551616 addresses; the default columns show it as 2^64 with the
share in use, and the exact counts stay in status (and in `-o wide`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.integration.operator.processes import FAST_LEASE, VipamProcess
from tests.realkube import RealCluster, resource_path


def _columns(output: str) -> dict[str, dict[str, str]]:
    """kubectl's table as {name: {column: cell}}, cut at the header's column starts (an
    empty cell, such as an unset priority, is blank)."""
    header, *rows = output.rstrip().splitlines()
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    names = header.split()
    table = {}
    for row in rows:
        cells = [row[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        table[cells[0]] = dict(zip(names, cells, strict=True))
    return table


def test_kubectl_get_ippools_reads_like_a_person_wrote_it(real_cluster: RealCluster,
                                                           tmp_path: Path) -> None:
    server = real_cluster.server
    server.json("POST", resource_path("ippools"), {
        "apiVersion": "vipam.io/v1alpha1", "kind": "IPPool", "metadata": {"name": "lab"},
        "spec": {"addresses": ["192.0.2.0/25", "2001:db8:0:7::/64"], "exclude": ["192.0.2.1"]},
    })
    namespace = real_cluster.namespace("numbers")
    for name in ("a", "b", "c"):
        server.json("POST", resource_path("services", namespace), {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "ipFamilyPolicy": "RequireDualStack",
                     "ipFamilies": ["IPv4", "IPv6"], "selector": {"app": name},
                     "ports": [{"port": 80, "protocol": "TCP"}]}})
    controller = VipamProcess("controller", [
        "--kubeconfig", str(real_cluster.controller_kubeconfig), "--namespace", "kube-system",
        "--identity", "numbers", *FAST_LEASE], tmp_path / "controller.log")

    def counted() -> dict[str, Any] | None:
        pool = real_cluster.api.get_object("ippools", None, "lab") or {}
        status: dict[str, Any] = pool.get("status") or {}
        return status if status.get("ipv6", {}).get("allocated") == "3" else None

    try:
        status = controller.wait("pool status with 3 allocated", counted)
    finally:
        controller.stop()
    assert status["ipv6"] == {
        "capacity": "18446744073709551616", "allocated": "3",
        "available": "18446744073709551613", "capacityReadable": "2^64",
        "allocatedPercent": "<0.01%",
    }
    assert status["ipv4"] == {"capacity": "127", "allocated": "3", "available": "124",
                              "capacityReadable": "127", "allocatedPercent": "2.36%"}
    kubectl = server.kubectl("get", "ippools", kubeconfig=real_cluster.admin_kubeconfig)
    row = _columns(kubectl.stdout)["lab"]
    assert {k: row[k] for k in ("SIZE-V4", "USED-V4", "SIZE-V6", "USED-V6")} == {
        "SIZE-V4": "127", "USED-V4": "2.36%", "SIZE-V6": "2^64", "USED-V6": "<0.01%"}, row
    assert "18446744073709551616" not in kubectl.stdout, kubectl.stdout
    wide = server.kubectl("get", "ippools", "-o", "wide", kubeconfig=real_cluster.admin_kubeconfig)
    row = _columns(wide.stdout)["lab"]
    assert (row["ALLOCATED-V6"], row["AVAILABLE-V6"]) == ("3", "18446744073709551613"), row
