"""Request counting, so tests can assert API cost (e.g. zero writes after a restart)."""

from __future__ import annotations

from collections import Counter

WRITE_VERBS = frozenset({"create", "update", "patch", "delete"})


class RequestStats:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def record(self, verb: str, resource: str) -> None:
        self.counts[(verb, resource)] += 1

    def count(self, verb: str | None = None, resource: str | None = None) -> int:
        """Requests matching verb and/or resource (`services` also matches `services/status`)."""
        return sum(
            n for (v, r), n in self.counts.items()
            if (verb is None or v == verb)
            and (resource is None or r == resource or r.startswith(resource + "/"))
        )

    @property
    def writes(self) -> int:
        return sum(n for (verb, _), n in self.counts.items() if verb in WRITE_VERBS)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def clear(self) -> None:
        self.counts.clear()

    def __repr__(self) -> str:
        return f"RequestStats(writes={self.writes}, counts={dict(self.counts)})"
