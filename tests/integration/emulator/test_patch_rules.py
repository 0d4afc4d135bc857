"""The patch functions on their own, against the published examples (RFC 7386 appendix A,
RFC 6902 appendix A) and the strategic-merge directives kubectl sends."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devkit.emulator.errors import ApiError
from devkit.emulator.patch import json_patch, merge_patch, strategic_merge_patch

RFC7386 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("original", "patch", "expected"), RFC7386)
def test_merge_patch_rfc7386_examples(original: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(original, patch) == expected


RFC6902 = [
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}],
     {"baz": "qux", "foo": "bar"}),
    ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
     {"foo": ["bar", "qux", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}],
     {"foo": ["bar", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}],
     {"baz": "boo", "foo": "bar"}),
    ({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ({"foo": ["all", "grass", "cows", "eat"]},
     [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    ({"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1",
                                                       "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ({"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
     {"foo": ["bar", ["abc", "def"]]}),
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    ({"a": 1}, [{"op": "copy", "from": "/a", "path": "/b"}], {"a": 1, "b": 1}),
]


@pytest.mark.parametrize(("original", "patch", "expected"), RFC6902)
def test_json_patch_rfc6902_examples(original: Any, patch: Any, expected: Any) -> None:
    assert json_patch(original, patch) == expected


@pytest.mark.parametrize(("original", "patch"), [
    ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}]),
    ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}]),
    ({"foo": ["a"]}, [{"op": "remove", "path": "/foo/5"}]),
    ({"foo": 1}, [{"op": "frobnicate", "path": "/foo"}]),
    ({"foo": 1}, [{"op": "add", "path": 5, "value": 1}]),
    ({"foo": 1}, [{"op": "move", "from": None, "path": "/bar"}]),
    ({"foo": 1}, ["add"]),
    ({"foo": 1}, [{"op": "copy", "path": "/bar"}]),
])
def test_json_patch_failures(original: Any, patch: Any) -> None:
    before = json.loads(json.dumps(original))
    with pytest.raises(ApiError) as caught:
        json_patch(original, patch)
    assert caught.value.code in (400, 422)
    assert original == before


def test_json_patch_is_all_or_nothing() -> None:
    original = {"a": 1}
    with pytest.raises(ApiError):
        json_patch(original, [{"op": "replace", "path": "/a", "value": 2},
                              {"op": "test", "path": "/a", "value": 1}])
    assert original == {"a": 1}


def test_strategic_retain_keys_and_element_order() -> None:
    service = {"spec": {"ports": [{"name": "a", "port": 1, "protocol": "TCP"},
                                  {"name": "b", "port": 2, "protocol": "TCP"}],
                        "type": "LoadBalancer", "sessionAffinity": "None"}}
    patch = {"spec": {"$setElementOrder/ports": [{"port": 2}, {"port": 1}],
                      "ports": [{"port": 2, "name": "bee"}]}}
    result = strategic_merge_patch(service, patch, "Service")
    assert [(p["port"], p["name"]) for p in result["spec"]["ports"]] == [(2, "bee"), (1, "a")]
    retained = strategic_merge_patch(service, {"spec": {
        "$retainKeys": ["type", "ports"], "type": "ClusterIP"}}, "Service")
    assert set(retained["spec"]) == {"type", "ports"}


def test_strategic_map_delete_directive_and_nulls() -> None:
    obj = {"metadata": {"labels": {"a": "1", "b": "2"}, "annotations": {"x": "y"}}}
    result = strategic_merge_patch(obj, {"metadata": {"labels": {"a": None},
                                                      "annotations": {"$patch": "delete"}}},
                                   "ConfigMap")
    assert result == {"metadata": {"labels": {"b": "2"}}}


def test_strategic_patch_does_not_touch_its_input() -> None:
    obj = {"metadata": {"finalizers": ["a"]}, "spec": {"ports": [{"port": 1}]}}
    strategic_merge_patch(obj, {"metadata": {"finalizers": ["b"]},
                                "spec": {"ports": [{"port": 1, "name": "x"}]}}, "Service")
    assert obj == {"metadata": {"finalizers": ["a"]}, "spec": {"ports": [{"port": 1}]}}


def _merge_diff(before: Any, after: Any) -> Any:
    """The JSON merge patch that turns `before` into `after` (an independent construction)."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return after
    patch: dict[str, Any] = {key: None for key in before.keys() - after.keys()}
    for key, value in after.items():
        if key not in before:
            patch[key] = value
        elif before[key] != value:
            patch[key] = _merge_diff(before[key], value)
    return patch


_SCALARS = st.one_of(st.booleans(), st.integers(), st.text(max_size=4))
# merge patch cannot express a null member, so generated objects carry none
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from("abcde"), inner, max_size=4)),
    max_leaves=12,
)


@given(before=st.dictionaries(st.sampled_from("abcde"), _JSON, max_size=4),
       after=st.dictionaries(st.sampled_from("abcde"), _JSON, max_size=4))
@settings(max_examples=300, deadline=None)
def test_merge_patch_of_a_diff_reaches_the_target(before: Any, after: Any) -> None:
    snapshot = json.loads(json.dumps(before))
    assert merge_patch(before, _merge_diff(before, after)) == after
    assert before == snapshot  # the original is never modified


@given(ports=st.lists(st.tuples(st.integers(1, 65535), st.sampled_from(["TCP", "UDP"])),
                      max_size=6, unique=True),
       extra=st.lists(st.tuples(st.integers(1, 65535), st.sampled_from(["TCP", "UDP"])),
                      max_size=6, unique=True))
@settings(max_examples=200, deadline=None)
def test_strategic_ports_union_by_port_and_protocol(ports: list[tuple[int, str]],
                                                    extra: list[tuple[int, str]]) -> None:
    def as_ports(items: list[tuple[int, str]], tag: str) -> list[dict[str, Any]]:
        return [{"port": p, "protocol": proto, "name": f"{tag}{p}{proto}"} for p, proto in items]

    service = {"spec": {"ports": as_ports(ports, "old")}}
    result = strategic_merge_patch(service, {"spec": {"ports": as_ports(extra, "new")}},
                                   "Service")["spec"]["ports"]
    keys = [(p["port"], p["protocol"]) for p in result]
    assert len(keys) == len(set(keys))
    assert set(keys) == set(ports) | set(extra)
    names = {(p["port"], p["protocol"]): p["name"] for p in result}
    assert all(names[key].startswith("new") for key in extra)  # patch values win


_KEYS = st.sampled_from(["spec", "ports", "port", "protocol", "metadata", "finalizers",
                         "status", "conditions", "type", "$patch", "$retainKeys",
                         "$setElementOrder/ports", "$deleteFromPrimitiveList/finalizers"])
_ANY = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(0, 3),
              st.sampled_from(["delete", "replace", "merge", "TCP", "x"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=15,
)


@given(original=st.dictionaries(_KEYS, _ANY, max_size=4), patch=_ANY,
       kind=st.sampled_from(["Service", "Node", "ConfigMap"]))
@settings(max_examples=500, deadline=None)
def test_strategic_patch_never_crashes(original: Any, patch: Any, kind: str) -> None:
    """Any input either patches into an object or is refused with an API error."""
    try:
        result = strategic_merge_patch(original, patch, kind)
    except ApiError as error:
        assert error.code in (400, 422)
    else:
        assert isinstance(result, dict)
