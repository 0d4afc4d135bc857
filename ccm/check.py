"""`vipam check FILE…`: validate IPPools (and advertisements' basic shape) offline.

Uses the same model as the controller, so what passes here is what the controller accepts.
Prints one line per problem, `file: Kind/name: field: message`, and exits 1 if there is any.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from pools.external import backend_for
from pools.model import Pool, PoolValidationError, find_overlaps, parse_pool

KNOWN_KINDS = {"IPPool", "L2Advertisement", "BGPAdvertisement", "BGPPeer"}


def _documents(path: str) -> Iterable[tuple[int, Any]]:
    with Path(path).open() as handle:
        yield from enumerate(yaml.safe_load_all(handle), start=1)


def check_files(paths: list[str], out: Any = None) -> int:
    out = out or sys.stdout
    problems: list[str] = []
    pools: list[Pool] = []
    checked = 0
    for path in paths:
        try:
            documents = list(_documents(path))
        except (OSError, yaml.YAMLError) as exc:
            problems.append(f"{path}: cannot read: {exc}")
            continue
        for index, doc in documents:
            if doc is None:
                continue
            where = f"{path}: document {index}"
            if not isinstance(doc, dict):
                problems.append(f"{where}: not a mapping")
                continue
            kind = doc.get("kind")
            name = (doc.get("metadata") or {}).get("name")
            if doc.get("apiVersion") != "vipam.io/v1alpha1" or kind not in KNOWN_KINDS:
                continue  # other objects (Services, ...) are not ours to check
            if not name:
                problems.append(f"{where}: {kind}: metadata.name is missing")
                continue
            checked += 1
            if kind != "IPPool":
                if not isinstance(doc.get("spec", {}), dict):
                    problems.append(f"{path}: {kind}/{name}: spec: must be a mapping")
                continue
            try:
                pool = parse_pool(name, doc.get("spec") or {})
            except PoolValidationError as exc:
                problems.extend(f"{path}: IPPool/{name}: {error}" for error in exc.errors)
                continue
            pools.append(pool)
            if pool.spec.external is not None:
                # provider options and the CA bundle are the backend's to judge: build it (no
                # connection is made) so a typo is caught here, not at the first allocation
                try:
                    backend_for(pool.spec.external, None, name=name)
                except (ValueError, OSError) as exc:
                    problems.append(f"{path}: IPPool/{name}: external: {exc}")
    for overlap in find_overlaps(pools):
        problems.append(
            f"IPPool/{overlap.pool_a} and IPPool/{overlap.pool_b} overlap: {overlap.ranges}"
        )
    for problem in problems:
        print(problem, file=out)
    if not problems:
        print(f"ok: {checked} object(s) valid", file=out)
    return 1 if problems else 0
