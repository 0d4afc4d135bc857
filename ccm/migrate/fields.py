"""Field bookkeeping: every field of a source object is either taken by a converter or reported.

A converter reads fields through :class:`Fields`; whatever it never took is reported as a loss
when it is done (:meth:`Fields.finish`). So a field added by a newer MetalLB or Cilium release,
which no converter knows, is reported instead of silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ccm.migrate.report import Report

JSON = dict[str, Any]


def is_unset(value: Any) -> bool:
    """Go's ``omitempty`` zero values: a field holding one says nothing."""
    return value is None or value is False or value == "" or value == 0 or value in ([], {})


class Fields:
    """The fields of one mapping (a spec, or an entry of a list in it), at a dotted path."""

    def __init__(self, data: Any, ref: str, path: str, report: Report) -> None:
        self.ref = ref
        self.path = path
        self.report = report
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            report.error(ref, path, f"expected a mapping, got {type(data).__name__}")
            data = {}
        self.data: Mapping[str, Any] = data
        self._taken: set[str] = set()

    def at(self, key: str) -> str:
        """The dotted path of a field, for findings."""
        return f"{self.path}.{key}" if self.path else key

    def take(self, key: str, default: Any = None) -> Any:
        self._taken.add(key)
        value = self.data.get(key, default)
        return default if value is None else value

    def has(self, key: str) -> bool:
        return not is_unset(self.data.get(key))

    def sub(self, key: str) -> Fields:
        """The nested mapping at key, tracked on its own (its unknown fields are reported)."""
        return Fields(self.take(key), self.ref, self.at(key), self.report)

    def items(self, key: str) -> list[Fields]:
        """Each mapping of the list at key, tracked on its own."""
        raw = self.take(key, [])
        if not isinstance(raw, list):
            self.report.error(self.ref, self.at(key), f"expected a list, got {type(raw).__name__}")
            return []
        return [
            Fields(item, self.ref, f"{self.at(key)}[{index}]", self.report)
            for index, item in enumerate(raw)
        ]

    def drop(self, key: str, message: str) -> None:
        """Report key as lost (when it holds a value) and mark it taken."""
        self._taken.add(key)
        if not is_unset(self.data.get(key)):
            self.report.lose(self.ref, self.at(key), message)

    def finish(self) -> None:
        """Report every field no converter took."""
        for key in sorted(set(self.data) - self._taken):
            if not is_unset(self.data[key]):
                self.report.lose(
                    self.ref, self.at(key),
                    "vipam migrate does not know this field; not carried",
                )
