"""Merge patches computed from two versions of an object: applying the patch to the old one
gives the new one (RFC 7386 semantics, checked with the emulator's own merge-patch code)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ccm.kube.patches import guarded, merge_diff
from devkit.emulator.patch import merge_patch

scalars = st.one_of(st.integers(-3, 3), st.text(max_size=3), st.booleans())
keys = st.sampled_from(["a", "b", "c", "d"])
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=12,
)
objects = st.dictionaries(keys, values, max_size=4)


@given(objects, objects)
def test_applying_the_diff_to_the_old_object_gives_the_new_one(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    assert merge_patch(old, merge_diff(old, new)) == new


@given(objects)
def test_no_difference_no_patch(obj: dict[str, Any]) -> None:
    assert merge_diff(obj, obj) == {}


def test_only_what_changed_is_sent_and_removed_keys_are_null() -> None:
    old = {"metadata": {"name": "web", "annotations": {"a": "1", "b": "2"},
                        "finalizers": ["x"]},
           "spec": {"type": "LoadBalancer", "loadBalancerIP": "192.0.2.1"}}
    new = {"metadata": {"name": "web", "annotations": {"a": "1"}, "finalizers": ["x", "y"]},
           "spec": {"type": "LoadBalancer"}}
    assert merge_diff(old, new) == {
        "metadata": {"annotations": {"b": None}, "finalizers": ["x", "y"]},
        "spec": {"loadBalancerIP": None},
    }


def test_the_guard_carries_the_resource_version_and_keeps_the_patch() -> None:
    patch = {"metadata": {"annotations": {"a": "1"}}, "status": {"x": 1}}
    assert guarded(patch, "42") == {
        "metadata": {"annotations": {"a": "1"}, "resourceVersion": "42"}, "status": {"x": 1},
    }
    assert "resourceVersion" not in patch["metadata"]
