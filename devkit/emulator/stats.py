"""Request counting, so tests can assert API cost (e.g. zero writes after a restart).

Each request is counted under its verb, resource and User-Agent: a test that stops one
controller and starts another counts the second's writes alone, whatever the first still had
on the wire when it stopped (a request cancelled on the client may reach the server later).
"""

from __future__ import annotations

from collections import Counter

WRITE_VERBS = frozenset({"create", "update", "patch", "delete"})


class RequestStats:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()  # (verb, resource, agent)

    def record(self, verb: str, resource: str, agent: str = "") -> None:
        self.counts[(verb, resource, agent)] += 1

    def count(self, verb: str | None = None, resource: str | None = None,
              agent: str | None = None) -> int:
        """Requests matching verb and/or resource (`services` also matches `services/status`),
        and/or sent by a User-Agent that contains ``agent``."""
        return sum(
            n for (v, r, a), n in self.counts.items()
            if (verb is None or v == verb)
            and (resource is None or r == resource or r.startswith(resource + "/"))
            and (agent is None or agent in a)
        )

    @property
    def writes(self) -> int:
        return sum(n for (verb, _, _), n in self.counts.items() if verb in WRITE_VERBS)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def clear(self) -> None:
        self.counts.clear()

    def __repr__(self) -> str:
        by_agent: dict[str, dict[str, int]] = {}
        for (verb, resource, agent), n in sorted(self.counts.items()):
            by_agent.setdefault(agent or "-", {})[f"{verb} {resource}"] = n
        return f"RequestStats(writes={self.writes}, by User-Agent={by_agent})"
