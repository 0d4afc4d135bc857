"""Speaker Lease objects and a settable clock for the membership tests."""

from __future__ import annotations

from typing import Any


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def lease(node: str, renew: str, holder: str | None = None) -> dict[str, Any]:
    return {"metadata": {"name": f"vipam-speaker-{node}", "namespace": "kube-system"},
            "spec": {"holderIdentity": node if holder is None else holder, "renewTime": renew}}
