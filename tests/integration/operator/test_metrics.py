"""The metrics as Prometheus and Grafana see them, scraped from a running controller and speaker.

Both processes run against the real API server with their ServiceAccounts, allocate and
announce one Service, and are then scraped over HTTP. Checked on the scrape (not on a list
written down here): Prometheus' naming conventions, no `_created` series, and that every query
of the Grafana dashboard in config/grafana names only metrics (and label names) the processes
export.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.operator.processes import FAST_LEASE, ROOT, VipamProcess
from tests.realkube import RealCluster, resource_path

DASHBOARD = ROOT / "config" / "grafana" / "vipam-dashboard.json"
NODE = "metrics-node"
# PromQL functions and aggregations the dashboard may call
FUNCTIONS = {"rate", "increase", "sum", "max", "min", "avg", "histogram_quantile", "time",
             "count"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
            "and", "or", "unless"}
# labels Prometheus adds to every scraped series (target labels), not the processes
TARGET_LABELS = {"instance", "job", "pod", "namespace", "container", "node", "service"}
UNIT_SUFFIXES = ("_seconds", "_bytes")


@dataclass
class Exported:
    """What one scrape exports: sample names and the label names seen on each."""

    types: dict[str, str] = field(default_factory=dict)  # family -> type
    helps: dict[str, str] = field(default_factory=dict)
    samples: dict[str, set[str]] = field(default_factory=dict)  # sample name -> label names

    def add(self, text: str) -> None:
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            self.helps[family.name] = family.documentation
            for name in _series_names(family.name, family.type):
                self.samples.setdefault(name, set())
            for sample in family.samples:
                self.samples.setdefault(sample.name, set()).update(sample.labels)


def _series_names(name: str, kind: str) -> list[str]:
    """The names a family can be queried by, samples or not (a labelled metric that has not
    been used yet is exported with HELP and TYPE only)."""
    if kind == "counter":
        return [f"{name}_total"]
    if kind == "histogram":
        return [f"{name}_bucket", f"{name}_sum", f"{name}_count"]
    return [name]


def _create(cluster: RealCluster, resource: str, body: dict[str, Any],
            namespace: str | None = None) -> None:
    cluster.server.json("POST", resource_path(resource, namespace), body)


@pytest.fixture
def scraped(real_cluster: RealCluster, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(controller scrape, speaker scrape) once a Service is allocated and announced."""
    _create(real_cluster, "nodes", {"apiVersion": "v1", "kind": "Node",
                                    "metadata": {"name": NODE}})
    _create(real_cluster, "ippools", {
        "apiVersion": "vipam.io/v1alpha1", "kind": "IPPool", "metadata": {"name": "metrics"},
        "spec": {"addresses": ["192.0.2.0/28", "2001:db8:0:9::/64"]}})
    _create(real_cluster, "l2advertisements", {
        "apiVersion": "vipam.io/v1alpha1", "kind": "L2Advertisement",
        "metadata": {"name": "metrics"}, "spec": {}})
    namespace = real_cluster.namespace("metrics")
    _create(real_cluster, "services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}],
                 "selector": {"app": "web"}}}, namespace)
    controller = VipamProcess("controller", [
        "--kubeconfig", str(real_cluster.controller_kubeconfig), "--namespace", "kube-system",
        "--identity", "metrics-controller", *FAST_LEASE], tmp_path / "controller.log")
    speaker = VipamProcess("speaker", [
        "--kubeconfig", str(real_cluster.speaker_kubeconfig), "--namespace", "kube-system",
        "--node-name", NODE, "--announcer", "log", "--no-bgp"], tmp_path / "speaker.log")
    try:
        controller.ready()
        speaker.ready()
        controller.wait("an allocation in the metrics", lambda: 'result="allocated"' in
                        controller.metrics())
        speaker.wait("an announced address in the metrics", lambda: re.search(
            r'vipam_speaker_announced_addresses\{mode="l2"\} [1-9]', speaker.metrics()))
        yield controller.metrics(), speaker.metrics()
    finally:
        speaker.stop()
        controller.stop()


def test_metric_names_follow_prometheus_conventions(scraped: tuple[str, str]) -> None:
    for text in scraped:
        assert "_created" not in text, "prometheus_client's _created series are switched off"
        exported = Exported()
        exported.add(text)
        assert exported.types, text
        for name, kind in exported.types.items():
            assert re.fullmatch(r"vipam_[a-z0-9]+(_[a-z0-9]+)*", name), name
            assert exported.helps[name].strip(), f"{name} has no HELP text"
            if kind == "counter":
                assert not name.endswith("_total"), f"{name}: the client appends _total"
            if kind in ("histogram", "summary"):
                assert name.endswith(UNIT_SUFFIXES), f"{name}: a base unit suffix is missing"
            if kind == "gauge":
                assert not name.endswith(("_total", "_count", "_sum", "_bucket")), name
            if "second" in name or "duration" in name or "latency" in name:
                assert name.endswith("_seconds"), f"{name}: times are in seconds"
        for sample in exported.samples:
            if sample.endswith("_total"):
                family = sample.removesuffix("_total")
                assert exported.types.get(family) == "counter", f"{sample} is not a counter"


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of the dashboard, templating included."""
    board = json.loads(DASHBOARD.read_text())
    found = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                found.append((panel["title"], target["expr"]))
            walk(panel.get("panels", []))

    walk(board["panels"])
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            found.append((f"variable {variable['name']}",
                          query["query"] if isinstance(query, dict) else query))
    return found


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def parse(expr: str) -> tuple[set[str], set[str], dict[str, set[str]], set[str]]:
    """(metric names, functions, labels matched per metric, labels grouped by) of a query."""
    bare = _STRING.sub('""', expr)
    grouped = {label.strip() for _, labels in _GROUPING.findall(bare)
               for label in labels.split(",") if label.strip()}
    matched: dict[str, set[str]] = {}
    for metric, matchers in _SELECTOR.findall(bare):
        matched.setdefault(metric, set()).update(
            label for label, _ in _MATCHER_LABEL.findall(matchers))
    rest = _GROUPING.sub(" ", bare)
    rest = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", rest)
    names, functions = set(), set()
    for match in _IDENT.finditer(rest):
        word = match.group(0)
        if word in KEYWORDS:
            continue
        if rest[match.end():].lstrip().startswith("("):
            functions.add(word)
        else:
            names.add(word)
    return names, functions, matched, grouped


def test_the_parser_sees_what_a_query_names() -> None:
    """The check below can fail: its parser finds names, functions and labels."""
    names, functions, matched, grouped = parse(
        'histogram_quantile(0.99, sum by (le, pool) (rate(vipam_x_bucket{op="get"}[5m]))) '
        '/ vipam_y')
    assert names == {"vipam_x_bucket", "vipam_y"}
    assert functions == {"histogram_quantile", "sum", "rate"}
    assert matched == {"vipam_x_bucket": {"op"}} and grouped == {"le", "pool"}


def _family(sample: str) -> str:
    """The metric family a sample name belongs to (counters, histograms and summaries)."""
    for suffix in ("_total", "_bucket", "_sum", "_count"):
        if sample.endswith(suffix):
            return sample.removesuffix(suffix)
    return sample


def test_every_dashboard_query_names_exported_metrics(scraped: tuple[str, str]) -> None:
    exported = Exported()
    for text in scraped:
        exported.add(text)
    queries = dashboard_queries()
    assert len(queries) >= 15
    used: set[str] = set()
    for title, expr in queries:
        names, functions, matched, grouped = parse(expr)
        assert names, f"{title}: {expr} names no metric"
        assert functions <= FUNCTIONS, f"{title}: unexpected function in {expr}"
        for name in names:
            assert name in exported.samples, f"{title}: {name} is not exported ({expr})"
        used |= names
        for metric, labels in matched.items():
            seen = exported.samples[metric]
            if seen:  # labels are known once the metric has samples
                assert labels <= seen | {"le"}, f"{title}: {metric} has no label {labels - seen}"
        labelled = set().union(*(exported.samples[name] for name in names))
        if labelled:
            missing = grouped - labelled - TARGET_LABELS - {"le"}
            assert not missing, f"{title}: no metric of {expr} has the labels {missing}"
    # and the dashboard shows every family the processes export
    queried_families = {_family(name) for name in used}
    assert set(exported.types) <= queried_families, set(exported.types) - queried_families
