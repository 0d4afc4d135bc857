"""The packed cache: a mapping like a dict, whose reads are fresh copies."""

from __future__ import annotations

from ccm.kube.packed import PackedCache


def test_reads_give_back_what_was_stored_as_new_objects() -> None:
    cache = PackedCache()
    obj = {"metadata": {"name": "web", "labels": {"a": "b"}}, "spec": {"ports": [{"port": 80}]},
           "status": {"loadBalancer": {}}, "n": None, "x": 1.5, "ok": True}
    cache["default/web"] = obj
    first = cache["default/web"]
    assert first == obj and first is not obj
    first["metadata"]["name"] = "changed"
    assert cache["default/web"]["metadata"]["name"] == "web"  # the cache is not aliased
    obj["spec"]["ports"].append({"port": 443})
    assert cache["default/web"]["spec"]["ports"] == [{"port": 80}]


def test_it_behaves_as_a_mutable_mapping() -> None:
    cache = PackedCache()
    cache.update({"a": {"v": 1}, "b": {"v": 2}})
    assert len(cache) == 2 and "a" in cache and "c" not in cache
    assert sorted(cache) == ["a", "b"] and dict(cache.items()) == {"a": {"v": 1}, "b": {"v": 2}}
    assert cache.get("c") is None
    del cache["a"]
    assert list(cache) == ["b"] and cache.packed_bytes() > 0
    cache.clear()
    assert len(cache) == 0 and cache.packed_bytes() == 0
