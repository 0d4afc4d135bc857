"""A real API-server outage, as an operator lives through it (ccm/health/probes.py).

A controller and a speaker run as processes against a real kube-apiserver of this test's own.
The API server gets SIGTERM (it drains, then exits), stays down a few seconds, and is started
again on the same port and etcd. Sampled twice a second all along, over HTTP like a kubelet and
Prometheus would:

* /healthz stays 200 the whole time for both (a restart would not bring the API server back)
  and says during the outage that the API server is unreachable;
* /readyz turns 503 once the API server has been silent longer than the grace period (the
  controller's renew deadline, the speaker's lease duration), naming the outage, and is 200
  again after the restart;
* /status says so (api.reachable, the last contact in RFC 3339, seconds since), the metrics too
  (vipam_api_contact_age_seconds, vipam_leader drops to 0 as the leader fences itself);
* afterwards the same processes (never restarted) keep the Service's address and allocate a
  new Service.

The timeline is written to outage-timeline.json in the test's folder (and printed with -s).
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from devkit.apiserver import ApiServer, missing_reason
from tests.integration.operator.processes import FAST_LEASE, ROOT, VipamProcess
from tests.prereq import require
from tests.realkube import resource_path

CONTROLLER_GRACE = 3.0  # --renew-deadline in FAST_LEASE
SPEAKER_GRACE = 1.5  # the speaker's default --lease-duration
DOWN_FOR = 8.0  # seconds between the API server's exit and its restart
NODE = "outage-node"


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ApiServer]:
    """An API server this test may stop: not the session's."""
    why = missing_reason()
    require(why is None, why or "")
    server = ApiServer(tmp_path / "apiserver")
    server.start()
    try:
        server.kubectl("apply", "-k", str(ROOT / "config"))
        server.kubectl("wait", "--for", "condition=Established", "--timeout", "60s", "crd",
                       "--all")
        yield server
    finally:
        server.stop()


def _create(server: ApiServer, resource: str, body: dict[str, Any],
            namespace: str | None = None) -> None:
    server.json("POST", resource_path(resource, namespace), body)


def _service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}],
                     "selector": {"app": name}}}


def _address(server: ApiServer, name: str) -> str | None:
    svc = server.json("GET", resource_path("services", "default", name))
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return str(ingress[0]["ip"]) if ingress else None


def _gauge(text: str, name: str) -> float | None:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def _sample(process: VipamProcess) -> dict[str, Any]:
    healthz, health_text = process.get("/healthz")
    readyz, ready_text = process.get("/readyz")
    metrics = process.metrics()
    return {
        "healthz": healthz, "healthz_text": health_text.strip(),
        "readyz": readyz, "readyz_text": ready_text.strip(),
        "age": _gauge(metrics, "vipam_api_contact_age_seconds"),
        "last_contact": _gauge(metrics, "vipam_api_last_contact_timestamp_seconds"),
        "leader": _gauge(metrics, "vipam_leader"),
        "api": process.status()["api"],
    }


def test_an_api_server_outage(own_server: ApiServer, tmp_path: Path) -> None:
    server = own_server
    tokens = {sa: server.create_token(sa, "kube-system")
              for sa in ("vipam-controller", "vipam-speaker")}
    configs = {sa: server.kubeconfig(tmp_path / f"{sa}.kubeconfig", token, "kube-system")
               for sa, token in tokens.items()}
    _create(server, "nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}})
    _create(server, "ippools", {"apiVersion": "vipam.io/v1alpha1", "kind": "IPPool",
                                "metadata": {"name": "outage"},
                                "spec": {"addresses": ["192.0.2.0/28"]}})
    _create(server, "l2advertisements", {"apiVersion": "vipam.io/v1alpha1",
                                         "kind": "L2Advertisement",
                                         "metadata": {"name": "outage"}, "spec": {}})
    _create(server, "services", _service("before"), "default")
    controller = VipamProcess("controller", [
        "--kubeconfig", str(configs["vipam-controller"]), "--namespace", "kube-system",
        "--identity", "outage-controller", *FAST_LEASE], tmp_path / "controller.log")
    speaker = VipamProcess("speaker", [
        "--kubeconfig", str(configs["vipam-speaker"]), "--namespace", "kube-system",
        "--node-name", NODE, "--announcer", "log", "--no-bgp"], tmp_path / "speaker.log")
    timeline: list[dict[str, Any]] = []
    try:
        controller.wait("leadership", lambda: "leader" in controller.ready())
        speaker.ready()
        address = controller.wait("an address for 'before'", lambda: _address(server, "before"))
        pids = (controller.process.pid, speaker.process.pid)

        started = time.monotonic()
        phase = "before"

        def record() -> None:
            timeline.append({"t": round(time.monotonic() - started, 2), "phase": phase,
                             "controller": _sample(controller), "speaker": _sample(speaker)})

        for _ in range(4):
            record()
            time.sleep(0.5)
        stopping = threading.Thread(
            target=server.stop_apiserver, kwargs={"sig": signal.SIGTERM, "timeout": 120})
        phase = "stopping"  # SIGTERM sent; the API server drains before it exits
        stopping.start()
        while stopping.is_alive():
            record()
            time.sleep(0.5)
        phase, down_at = "down", time.monotonic()
        while time.monotonic() - down_at < DOWN_FOR:
            record()
            time.sleep(0.5)
        server.start_apiserver()  # same port, same etcd
        phase, back_at = "restarted", time.monotonic()
        while time.monotonic() - back_at < 60:
            record()
            last = timeline[-1]
            if (last["controller"]["readyz"] == last["speaker"]["readyz"] == 200
                    and last["controller"]["leader"] == 1):
                break
            time.sleep(0.5)

        assert (controller.process.pid, speaker.process.pid) == pids
        assert controller.process.poll() is None and speaker.process.poll() is None
        assert _address(server, "before") == address, "the outage moved an address"
        _create(server, "services", _service("after"), "default")
        controller.wait("an address for 'after'", lambda: _address(server, "after"), 30)
    finally:
        (tmp_path / "outage-timeline.json").write_text(json.dumps(timeline, indent=1))
        speaker.stop()
        controller.stop()
    print(_summary(timeline))
    _check(timeline)


def _summary(timeline: list[dict[str, Any]]) -> str:
    lines = ["t(s)   phase      ctl healthz/readyz leader age(s) | spk healthz/readyz age(s)"]
    for row in timeline:
        c, s = row["controller"], row["speaker"]
        lines.append(f"{row['t']:6.1f} {row['phase']:<10} {c['healthz']}/{c['readyz']}"
                     f"        {c['leader']}    {c['age']:6.1f} | {s['healthz']}/{s['readyz']}"
                     f"      {s['age']:6.1f}")
    return "\n".join(lines)


def _check(timeline: list[dict[str, Any]]) -> None:
    phases = {row["phase"] for row in timeline}
    assert phases == {"before", "stopping", "down", "restarted"}, phases
    for row in timeline:
        for who in ("controller", "speaker"):
            sample = row[who]
            assert sample["healthz"] == 200, (row["t"], who, sample["healthz_text"])
    before = [row for row in timeline if row["phase"] == "before"]
    assert all(r["controller"]["readyz"] == r["speaker"]["readyz"] == 200 for r in before)
    assert all(r["controller"]["leader"] == 1 for r in before)
    down = [row for row in timeline if row["phase"] == "down"]
    down_start = down[0]["t"]  # the API server process has exited
    for who, grace in (("controller", CONTROLLER_GRACE), ("speaker", SPEAKER_GRACE)):
        settled = [r[who] for r in down if r["t"] - down_start >= grace + 1.0]
        assert settled, f"{who}: no sample {grace + 1}s into the outage"
        for sample in settled:
            assert sample["readyz"] == 503, sample
            assert sample["readyz_text"].startswith("not ready: API server unreachable for ")
            assert "unreachable" in sample["healthz_text"], sample["healthz_text"]
            assert "a restart would not help" in sample["healthz_text"]
            assert sample["age"] is not None and sample["age"] > grace, sample
            api = sample["api"]
            assert api["reachable"] is False and api["seconds_since_contact"] > grace, api
            contact = datetime.fromisoformat(api["last_contact"].replace("Z", "+00:00"))
            assert abs(contact.timestamp() - sample["last_contact"]) < 0.01, api
            assert api["last_failure"], api
        if who == "controller":
            assert all(s["leader"] == 0 for s in settled), "the leader did not fence itself"
    # SIGTERM stops the answers at once and the drain takes long (about a minute here): each
    # process turns unready one grace period after the last answer, not when the server exits
    sigterm = min(r["t"] for r in timeline if r["phase"] == "stopping")
    for who, grace in (("controller", CONTROLLER_GRACE), ("speaker", SPEAKER_GRACE)):
        first = next(r for r in timeline if r[who]["readyz"] == 503)
        assert first["phase"] in ("stopping", "down"), first
        assert first[who]["age"] > grace, first
        assert first["t"] - sigterm <= grace + 1.5, (who, first["t"], sigterm)
    back = timeline[-1]
    assert back["phase"] == "restarted"
    assert back["controller"]["readyz"] == back["speaker"]["readyz"] == 200, back
    assert back["controller"]["leader"] == 1 and back["controller"]["api"]["reachable"], back
    assert back["controller"]["age"] < CONTROLLER_GRACE, back
