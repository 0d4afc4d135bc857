"""Exponential backoff with full jitter, shared by reconnect loops and the work queue."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    """Delay doubling from `base` to `cap`; `next()` draws uniformly below the current bound."""

    base: float = 0.005
    cap: float = 300.0
    failures: int = 0

    def next(self) -> float:
        bound = min(self.cap, self.base * (2.0 ** min(self.failures, 62)))
        self.failures += 1
        # half fixed, half random: spreads retries without ever retrying at once
        return bound / 2 + random.uniform(0, bound / 2)

    def reset(self) -> None:
        self.failures = 0
