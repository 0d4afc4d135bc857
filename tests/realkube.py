"""pytest plugin: a real kube-apiserver (devkit.apiserver) for the whole test session.

* `apiserver` (session): etcd + kube-apiserver with RBAC and token authentication, with
  `config/` applied (CRDs, ServiceAccounts, RBAC, the Deployment and DaemonSet, stored only).
  Without binaries a local run skips with a message saying how to get them; under CI it fails.
* `real_cluster` (function): kubeconfigs for the admin and for the controller's and the
  speaker's own ServiceAccounts (real TokenRequest tokens, so the server enforces config/rbac),
  a `RealApi` view for assertions, and a clean slate afterwards: the vipam objects, Services,
  EndpointSlices, Nodes, Leases and Secrets a test made are deleted (finalizers stripped first),
  so the next test starts from an empty cluster. Names a test makes with `unique(...)` are never
  reused in the session.
* The server keeps an audit log of every request made with a ServiceAccount token. A test in
  which the server refused the controller or the speaker anything (403) fails at teardown: the
  server enforces config/rbac, and a refused call is a bug even when the code retries past it.
  A test that provokes a refusal on purpose says so with `@pytest.mark.expect_forbidden`.
  `RealCluster.audit_events()` returns what the product's identities did during the test.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devkit.apiserver import ApiServer, missing_reason
from tests.prereq import require

ROOT = Path(__file__).resolve().parents[1]
_counter = itertools.count(1)

# resource -> (api prefix, namespaced)
_CORE = {"services", "events", "namespaces", "nodes", "configmaps", "endpoints", "secrets",
         "serviceaccounts", "pods"}
_GROUPS = {
    "leases": "coordination.k8s.io/v1",
    "endpointslices": "discovery.k8s.io/v1",
    "ippools": "vipam.io/v1alpha1",
    "l2advertisements": "vipam.io/v1alpha1",
    "bgpadvertisements": "vipam.io/v1alpha1",
    "bgppeers": "vipam.io/v1alpha1",
}
_CLUSTER_SCOPED = {"namespaces", "nodes", "ippools", "l2advertisements", "bgpadvertisements",
                   "bgppeers"}
VIPAM_KINDS = ("ippools", "l2advertisements", "bgpadvertisements", "bgppeers")
# emulator verb names -> apiserver_request_total verbs
_VERBS = {"create": "POST", "update": "PUT", "patch": "PATCH", "delete": "DELETE",
          "get": "GET", "list": "LIST", "watch": "WATCH"}
_WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY")


def unique(prefix: str) -> str:
    """A name no other test of this session uses (namespaces, pools, nodes...)."""
    return f"{prefix}-{next(_counter)}"


def resource_path(resource: str, namespace: str | None = None, name: str | None = None) -> str:
    """`services`, `v1/services` or `vipam.io/v1alpha1/ippools` -> the REST path."""
    parts = resource.split("/")
    plural = parts[-1]
    if len(parts) == 1:
        api = "v1" if plural in _CORE else _GROUPS[plural]
    else:
        api = "/".join(parts[:-1])
    prefix = "/api/v1" if api == "v1" else f"/apis/{api}"
    path = prefix
    if namespace and plural not in _CLUSTER_SCOPED:
        path += f"/namespaces/{namespace}"
    path += f"/{plural}"
    if name:
        path += f"/{name}"
    return path


class RealStats:
    """The emulator's `stats` interface over the server's own records.

    `count(verb, resource)` counts requests since the last `clear`, from
    `apiserver_request_total`: what the server served, whoever sent it. With `agent`, it
    counts from the audit log the requests whose User-Agent contains `agent` (ServiceAccount
    requests only: the log has no others).
    """

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.baseline = server.request_counts()
        self.audit_offset = server.audit_offset()

    def clear(self) -> None:
        self.baseline = self.server.request_counts()
        self.audit_offset = self.server.audit_offset()

    def delta(self) -> dict[tuple[str, str, str, str], int]:
        now = self.server.request_counts()
        return {
            key: round(value - self.baseline.get(key, 0.0))
            for key, value in now.items()
            if value - self.baseline.get(key, 0.0) > 0.5
        }

    def count(self, verb: str | None = None, resource: str | None = None,
              agent: str | None = None) -> int:
        if agent is not None:
            return self._count_sent_by(agent, verb, resource)
        wanted = _VERBS.get(verb, verb.upper()) if verb else None
        total = 0
        for (v, _group, res, sub), n in self.delta().items():
            if wanted is not None and v != wanted:
                continue
            if resource is not None:
                base, _, want_sub = resource.partition("/")
                if res != base or (want_sub and sub != want_sub):
                    continue
            total += n
        return total

    def _count_sent_by(self, agent: str, verb: str | None, resource: str | None) -> int:
        base, _, want_sub = (resource or "").partition("/")
        total = 0
        for event in self.server.audit_events(self.audit_offset):
            ref = event.get("objectRef") or {}
            if (agent in event.get("userAgent", "")
                    and (verb is None or event.get("verb") == verb)
                    and (not base or ref.get("resource") == base)
                    and (not want_sub or ref.get("subresource") == want_sub)):
                total += 1
        return total

    @property
    def writes(self) -> int:
        return sum(n for (v, *_), n in self.delta().items() if v in _WRITE_VERBS)

    def __repr__(self) -> str:
        writes = {k: n for k, n in self.delta().items() if k[0] in _WRITE_VERBS}
        by_agent: dict[str, dict[str, int]] = {}
        for event in self.server.audit_events(self.audit_offset):
            if _VERBS.get(event.get("verb", "")) not in _WRITE_VERBS:
                continue
            ref = event.get("objectRef") or {}
            what = "/".join(filter(None, (event["verb"], ref.get("resource"),
                                          ref.get("subresource"))))
            mine = by_agent.setdefault(event.get("userAgent", "-"), {})
            mine[what] = mine.get(what, 0) + 1
        return f"RealStats(writes={writes}, ServiceAccount writes by User-Agent={by_agent})"


@dataclass
class RealApi:
    """What tests read from the server, with the emulator's assertion helpers' names
    (`get_object`, `list_objects`, `stats`), as the admin. Never used by the code under test."""

    server: ApiServer
    stats: RealStats = field(init=False)

    def __post_init__(self) -> None:
        self.stats = RealStats(self.server)

    def reset_stats(self) -> None:
        self.stats.clear()

    def get_object(self, resource: str, namespace: str | None,
                   name: str) -> dict[str, Any] | None:
        status, body = self.server.request("GET", resource_path(resource, namespace, name))
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"GET {resource} {namespace}/{name}: {status} {body[:300]!r}")
        return dict(json.loads(body))

    def list_objects(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every object of `resource`; the server's own `default/kubernetes` Service is left
        out (the emulator has none, and no test made it)."""
        status, body = self.server.request("GET", resource_path(resource, namespace), timeout=30)
        if status != 200:
            raise RuntimeError(f"LIST {resource}: {status} {body[:300]!r}")
        items = list(json.loads(body).get("items") or [])
        if resource.split("/")[-1] != "services":
            return items
        return [item for item in items
                if (item["metadata"].get("namespace"), item["metadata"]["name"])
                != ("default", "kubernetes")]

    def delete_all(self, resource: str, keep: set[tuple[str | None, str]] | None = None) -> None:
        """Strip finalizers, then delete every object of `resource` (but `keep`), eight
        requests in flight: a test may leave thousands of Services behind."""
        targets = [obj["metadata"] for obj in self.list_objects(resource)
                   if not keep or (obj["metadata"].get("namespace"),
                                   obj["metadata"]["name"]) not in keep]

        def delete(meta: dict[str, Any]) -> None:
            path = resource_path(resource, meta.get("namespace"), meta["name"])
            if meta.get("finalizers"):
                self.server.request("PATCH", path, {"metadata": {"finalizers": None}},
                                    content_type="application/merge-patch+json")
            self.server.request("DELETE", path)

        _in_parallel(delete, targets)


def _in_parallel(function: Callable[[dict[str, Any]], None], items: list[dict[str, Any]]) -> None:
    if len(items) <= 2:
        for item in items:
            function(item)
        return
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(function, items))


SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


def refused(events: list[dict[str, Any]]) -> list[str]:
    """Audit events in which the server refused a ServiceAccount (403), one line each."""
    lines = []
    for event in events:
        user = event.get("user", {}).get("username", "")
        if user.startswith(SERVICE_ACCOUNT_PREFIX) and (
                event.get("responseStatus", {}).get("code") == 403):
            ref = event.get("objectRef", {})
            lines.append(f"{user} {event.get('verb')} {ref.get('apiGroup', '')}/"
                         f"{ref.get('resource')}/{ref.get('subresource', '')} "
                         f"ns={ref.get('namespace', '')} name={ref.get('name', '')}: "
                         f"{event.get('responseStatus', {}).get('message', '')}")
    return lines


@dataclass
class RealCluster:
    """One test's view of the session's server."""

    server: ApiServer
    api: RealApi
    admin_kubeconfig: Path
    controller_kubeconfig: Path
    speaker_kubeconfig: Path
    audit_offset: int = 0

    def audit_events(self) -> list[dict[str, Any]]:
        """What the ServiceAccounts asked the server for since this test began."""
        return self.server.audit_events(self.audit_offset)

    def namespace(self, prefix: str = "t", labels: dict[str, str] | None = None) -> str:
        name = unique(prefix)
        self.server.json("POST", "/api/v1/namespaces", {
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels or {}},
        })
        return name

    def cleanup(self) -> None:
        for kind in VIPAM_KINDS:
            self.api.delete_all(kind)
        self.api.delete_all("services", keep={("default", "kubernetes")})
        for kind in ("endpointslices", "nodes", "secrets"):
            self.api.delete_all(kind)
        # the API server's own identity Leases stay
        self.api.delete_all("leases", keep={
            (lease["metadata"]["namespace"], lease["metadata"]["name"])
            for lease in self.api.list_objects("leases")
            if lease["metadata"]["name"].startswith(("apiserver-", "kube-apiserver"))
        })
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            left = self.api.list_objects("services")
            if not left:
                return
            self.api.delete_all("services", keep={("default", "kubernetes")})
            time.sleep(0.05)
        raise AssertionError(f"services left after cleanup: {[s['metadata'] for s in left]}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "expect_forbidden: the test makes the server refuse a ServiceAccount (403) "
                   "on purpose; real_cluster does not fail it for that")


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    why = missing_reason()
    require(why is None, why or "")
    server = ApiServer(tmp_path_factory.mktemp("apiserver"), audit=True)
    server.start()
    try:
        # strict field validation: an unknown field in our manifests fails the session
        server.kubectl("apply", "--validate=strict", "-k", str(ROOT / "config"))
        server.kubectl("wait", "--for", "condition=Established", "--timeout", "60s",
                       "crd", "--all")
        yield server
    finally:
        server.stop()


@dataclass
class _Tokens:
    controller: str
    speaker: str


@pytest.fixture(scope="session")
def service_account_tokens(apiserver: ApiServer) -> _Tokens:
    return _Tokens(
        controller=apiserver.create_token("vipam-controller", "kube-system"),
        speaker=apiserver.create_token("vipam-speaker", "kube-system"),
    )


@pytest.fixture
def real_cluster(apiserver: ApiServer, service_account_tokens: _Tokens, tmp_path: Path,
                 request: pytest.FixtureRequest) -> Iterator[RealCluster]:
    cluster = RealCluster(
        server=apiserver,
        api=RealApi(apiserver),
        admin_kubeconfig=apiserver.kubeconfig(tmp_path / "admin.kubeconfig"),
        controller_kubeconfig=apiserver.kubeconfig(
            tmp_path / "controller.kubeconfig", service_account_tokens.controller,
            namespace="kube-system"),
        speaker_kubeconfig=apiserver.kubeconfig(
            tmp_path / "speaker.kubeconfig", service_account_tokens.speaker,
            namespace="kube-system"),
    )
    cluster.cleanup()
    cluster.audit_offset = apiserver.audit_offset()
    try:
        yield cluster
    finally:
        cluster.cleanup()
    if request.node.get_closest_marker("expect_forbidden") is None:
        forbidden = refused(cluster.audit_events())
        assert not forbidden, "the server refused the product (RBAC):\n" + "\n".join(forbidden)
