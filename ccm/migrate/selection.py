"""Label selectors read from a source object, and which pools an advertisement selects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ccm.migrate.fields import Fields
from ccm.migrate.values import selector
from pools.selectors import LabelSelector

JSON = dict[str, Any]


NODE_ONLY_OPERATORS = ("Gt", "Lt")  # node selector terms have them; label selectors do not


def _inexpressible(fields: Fields, where: str, raw: Any) -> bool:
    """A node selector with Gt/Lt, which vipam's label selectors cannot say: a loss."""
    expressions = raw.get("matchExpressions") if isinstance(raw, dict) else None
    operators = {str(e.get("operator")) for e in expressions or [] if isinstance(e, dict)}
    bad = sorted(operators & set(NODE_ONLY_OPERATORS))
    if bad:
        fields.report.lose(fields.ref, where, f"operator {', '.join(bad)}: vipam's selectors "
                                              "have In, NotIn, Exists and DoesNotExist only; "
                                              "selector dropped")
    return bool(bad)


def selectors_at(fields: Fields, key: str) -> list[JSON]:
    """The list of label selectors at key, each validated; invalid ones are errors."""
    raw = fields.take(key, [])
    if not isinstance(raw, list):
        fields.report.error(fields.ref, fields.at(key), "expected a list of label selectors")
        return []
    result = []
    dropped = False
    for index, entry in enumerate(raw):
        where = f"{fields.at(key)}[{index}]"
        if _inexpressible(fields, where, entry):
            dropped = True
            continue
        try:
            result.append(selector(entry))
        except ValueError as exc:
            fields.report.error(fields.ref, where, str(exc))
    if dropped and not result:
        fields.report.lose(fields.ref, fields.at(key), "no selector left, which means "
                                                       "everything: it now applies to all")
    return result


def one_selector(fields: Fields, key: str) -> JSON | None:
    """The single label selector at key (None when absent); an invalid one is an error."""
    raw = fields.take(key)
    if raw is None or _inexpressible(fields, fields.at(key), raw):
        return None
    try:
        return selector(raw)
    except ValueError as exc:
        fields.report.error(fields.ref, fields.at(key), str(exc))
        return None


def pools_selected(spec: Mapping[str, Any], pools: Mapping[str, JSON]) -> list[str]:
    """Names of ``pools`` a vipam advertisement spec selects (the speaker's rule: none named
    and no selector means every pool; otherwise named ones plus those a selector matches)."""
    names = set(spec.get("ipPools") or ())
    selectors = [LabelSelector.model_validate(s) for s in spec.get("ipPoolSelectors") or ()]
    if not names and not selectors:
        return sorted(pools)
    chosen = []
    for name, obj in pools.items():
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if name in names or any(s.matches(labels) for s in selectors):
            chosen.append(name)
    return sorted(chosen)
