"""Helpers for JSON-shaped objects (dicts, lists, scalars) as the store keeps them."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def clone(value: T) -> T:
    """Deep-copy a JSON document; ~3x faster than copy.deepcopy, which matters on the write
    path (stored objects are shared with watch history, so writes work on copies)."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [clone(v) for v in value]  # type: ignore[return-value]
    return value
