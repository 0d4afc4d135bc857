"""The vipam objects a migration produces: collected, checked like `vipam check`, written as YAML.

Objects keep their source names, so the names advertisements use to refer to pools and peers
stay valid. Every object carries ``vipam.io/migrated-from`` naming its source, and pools keep
their labels (advertisements select pools by label). Before anything is written the pools go
through the controller's own model (:func:`pools.model.parse_pool`) and overlap check, so the
output passes `vipam check`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from ccm.migrate.report import Report
from pools.model import Pool, PoolValidationError, find_overlaps, parse_pool

JSON = dict[str, Any]
API_VERSION = "vipam.io/v1alpha1"
ANN_MIGRATED_FROM = "vipam.io/migrated-from"
KIND_ORDER = ("IPPool", "L2Advertisement", "BGPPeer", "BGPAdvertisement")


@dataclass
class Output:
    """Objects by (kind, name), in the order a user reads them: pools, then how to announce."""

    report: Report
    objects: dict[tuple[str, str], JSON] = field(default_factory=dict)
    sources: dict[tuple[str, str], str] = field(default_factory=dict)
    projects: set[str] = field(default_factory=set)  # compat names: metallb, cilium
    # BGPPeers whose source session carried both families: (name, source, field)
    multiprotocol: list[tuple[str, str, str]] = field(default_factory=list)
    # (kind, name) of source objects that could not be written (their loss is reported)
    unwritten: set[tuple[str, str]] = field(default_factory=set)

    def add(
        self, kind: str, name: str, spec: JSON, *, source: str, origin: str,
        labels: dict[str, str] | None = None,
    ) -> bool:
        """Add one object; refuse a second object of the same kind and name (an error)."""
        key = (kind, name)
        if key in self.objects:
            self.report.error(
                source, "metadata.name",
                f"{kind}/{name} would also be written for {self.sources[key]}; rename one",
            )
            return False
        metadata: JSON = {"name": name, "annotations": {ANN_MIGRATED_FROM: origin}}
        if labels:
            metadata["labels"] = dict(labels)
        self.objects[key] = {
            "apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec,
        }
        self.sources[key] = source
        return True

    def of_kind(self, kind: str) -> list[JSON]:
        return [obj for (k, _), obj in sorted(self.objects.items()) if k == kind]

    def names(self, kind: str) -> set[str]:
        return {name for (k, name) in self.objects if k == kind}

    def pools(self) -> list[Pool]:
        """The migrated pools as the controller parses them (invalid ones are reported)."""
        parsed = []
        for obj in self.of_kind("IPPool"):
            name = obj["metadata"]["name"]
            try:
                parsed.append(parse_pool(name, obj["spec"]))
            except PoolValidationError as exc:
                source = self.sources[("IPPool", name)]
                for problem in exc.errors:
                    self.report.error(source, "", f"written as IPPool/{name}: {problem}")
        return parsed

    def check(self) -> list[Pool]:
        """What `vipam check` would refuse, as errors; returns the valid pools."""
        pools = self.pools()
        for overlap in find_overlaps(pools):
            self.report.error(
                f"IPPool/{overlap.pool_a}", "spec.addresses",
                f"overlaps IPPool/{overlap.pool_b} ({overlap.ranges}); vipam never merges pools: "
                "make the source pools disjoint first",
            )
        return pools

    def yaml(self) -> str:
        documents = [obj for kind in KIND_ORDER for obj in self.of_kind(kind)]
        header = "# vipam objects written by `vipam migrate`; check with `vipam check FILE`\n"
        if not documents:
            return header
        return header + yaml.safe_dump_all(
            documents, sort_keys=False, explicit_start=True, default_flow_style=False
        )
