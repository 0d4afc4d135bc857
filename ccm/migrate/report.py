"""What a migration could not carry, what it changed on the way, and what stops it.

Three kinds of finding, each naming the source object and the field:

* a **loss**: the peer's object says something vipam's objects cannot say (a BFD profile, a
  VRF, a Service selector on an advertisement). `vipam migrate` exits non-zero on any loss
  unless ``--allow-loss``, because a silent loss is a behaviour change the user never agreed to.
* a **note**: carried, but written differently or needing a step outside the objects (copy a
  Secret into the speaker's namespace, a priority derived from MetalLB's pool order).
* an **error**: the input itself is unusable (not an address, two pools overlap); nothing is
  written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO


@dataclass(frozen=True)
class Finding:
    """One line of the report: ``Kind/name: field: message``."""

    obj: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.obj}: {self.field}: {self.message}" if self.field else (
            f"{self.obj}: {self.message}"
        )


@dataclass
class Report:
    losses: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)
    errors: list[Finding] = field(default_factory=list)

    def lose(self, obj: str, where: str, message: str) -> None:
        self.losses.append(Finding(obj, where, message))

    def note(self, obj: str, where: str, message: str) -> None:
        self.notes.append(Finding(obj, where, message))

    def error(self, obj: str, where: str, message: str) -> None:
        self.errors.append(Finding(obj, where, message))

    def write(self, out: TextIO) -> None:
        """Errors first (they stop everything), then losses, then notes; one per line, grouped
        by object (sorted), each object's findings in the order its fields were read."""
        for label, findings in (("error", self.errors), ("lost", self.losses),
                                ("note", self.notes)):
            for finding in sorted(findings, key=lambda f: f.obj):
                print(f"{label}: {finding}", file=out)
