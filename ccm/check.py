"""`vipam check FILE…`: validate every vipam object offline, with the models the processes use.

Each object goes through :func:`ccm.contract.models.parse_object` -- the IPPool model the
controller uses, the advertisement and peer models the speaker uses -- so what passes here is
what they accept, and the models agree with the CRDs (tests/unit/contract). On top of what one
object can say about itself, check looks across the files: two objects of one kind with one
name, overlapping pools, and advertisements naming pools or peers that none of the files
defines (only when the files define any: an advertisement checked alone may name pools that
live in the cluster).

A document in the vipam.io group with an unknown kind or version is an error, as is a file with
no documents and a run that found no vipam object at all; objects of other groups (a Secret,
a Service) are skipped and counted. Prints one line per problem, ``file: Kind/name: field:
message``, and exits 1 if there is any.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from ccm.contract import names
from ccm.contract.models import (
    BGPAdvertisementSpec,
    L2AdvertisementSpec,
    ObjectError,
    ParsedObject,
    parse_object,
)
from pools.external import backend_for
from pools.model import Pool, find_overlaps


def _documents(path: str) -> list[tuple[int, Any]]:
    with Path(path).open() as handle:
        return list(enumerate(yaml.safe_load_all(handle), start=1))


def _is_vipam(doc: dict[str, Any]) -> bool:
    """Ours to check: the vipam.io group, or one of our kinds without any apiVersion."""
    api_version = doc.get("apiVersion")
    if isinstance(api_version, str) and api_version.split("/", 1)[0] == names.GROUP:
        return True
    return not api_version and doc.get("kind") in names.KINDS


def check_files(paths: list[str], out: Any = None) -> int:
    out = out or sys.stdout
    problems: list[str] = []
    parsed: list[tuple[str, ParsedObject]] = []
    skipped = 0
    for path in paths:
        try:
            documents = _documents(path)
        except (OSError, yaml.YAMLError) as exc:
            problems.append(f"{path}: cannot read: {exc}")
            continue
        if not any(doc is not None for _, doc in documents):
            problems.append(f"{path}: no objects in the file")
            continue
        for index, doc in documents:
            if doc is None:
                continue
            where = f"{path}: document {index}"
            if not isinstance(doc, dict):
                problems.append(f"{where}: not a mapping")
                continue
            if not _is_vipam(doc):
                skipped += 1
                continue
            name = (doc.get("metadata") or {}).get("name") if isinstance(
                doc.get("metadata"), dict) else None
            label = f"{path}: {doc.get('kind')}/{name}" if name else where
            try:
                obj = parse_object(doc)
            except ObjectError as exc:
                problems.extend(f"{label}: {error}" for error in exc.errors)
                continue
            parsed.append((path, obj))
            problems.extend(_external_problems(path, obj))
    problems.extend(_cross_checks(parsed))
    if not parsed and not problems:
        problems.append(f"no vipam object found ({skipped} other object(s) skipped)")
    for problem in problems:
        print(problem, file=out)
    if not problems:
        note = f", {skipped} other object(s) skipped" if skipped else ""
        print(f"ok: {len(parsed)} object(s) valid{note}", file=out)
    return 1 if problems else 0


def _external_problems(path: str, obj: ParsedObject) -> Iterable[str]:
    """Provider options and the CA bundle are the backend's to judge: build it (no connection
    is made) so a typo is caught here, not at the first allocation."""
    if obj.kind != "IPPool" or obj.spec.spec.external is None:
        return []
    try:
        backend_for(obj.spec.spec.external, None, name=obj.name)
    except (ValueError, OSError) as exc:
        return [f"{path}: IPPool/{obj.name}: external: {exc}"]
    return []


def _cross_checks(parsed: list[tuple[str, ParsedObject]]) -> list[str]:
    problems: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    for path, obj in parsed:
        first = seen.get((obj.kind, obj.name))
        seen.setdefault((obj.kind, obj.name), path)
        if first is not None:
            problems.append(
                f"{path}: {obj.kind}/{obj.name}: metadata.name: a second {obj.kind} named "
                f"{obj.name!r} (the first is in {first}); names are unique per kind"
            )
    pools: list[Pool] = [obj.spec for _, obj in parsed if obj.kind == "IPPool"]
    pool_names = {pool.name for pool in pools}
    peer_names = {obj.name for _, obj in parsed if obj.kind == "BGPPeer"}
    for path, obj in parsed:
        if isinstance(obj.spec, L2AdvertisementSpec | BGPAdvertisementSpec) and pool_names:
            for index, pool in enumerate(obj.spec.ip_pools):
                if pool not in pool_names:
                    problems.append(
                        f"{path}: {obj.kind}/{obj.name}: ipPools[{index}]: no IPPool named "
                        f"{pool!r} in the files checked"
                    )
        if isinstance(obj.spec, BGPAdvertisementSpec) and peer_names:
            for index, peer in enumerate(obj.spec.peers):
                if peer not in peer_names:
                    problems.append(
                        f"{path}: {obj.kind}/{obj.name}: peers[{index}]: no BGPPeer named "
                        f"{peer!r} in the files checked"
                    )
    unique = {pool.name: pool for pool in pools}
    for overlap in find_overlaps(unique.values()):
        problems.append(
            f"IPPool/{overlap.pool_a} and IPPool/{overlap.pool_b} overlap: {overlap.ranges}"
        )
    return problems
