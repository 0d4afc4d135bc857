"""Property tests for the controller's writers: idempotent, and release undoes only our part.

Whatever the user put on a Service (annotations, finalizers, a requested spec.loadBalancerIP),
allocating and then releasing gives back the user's object; each writer applied to its own
output asks for no further write (so a converged cluster makes no writes).
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ccm.contract import names
from ccm.controller import desired

label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=8)
user_annotations = st.dictionaries(label.map(lambda k: f"user.example/{k}"), label, max_size=3)
user_finalizers = st.lists(label.map(lambda k: f"example.com/{k}"), max_size=2, unique=True)
ipv4 = st.integers(0, 255).map(lambda n: f"192.0.2.{n}")
ipv6 = st.integers(0, 65535).map(lambda n: f"2001:db8::{n:x}")


@st.composite
def services(draw: st.DrawFn) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "s", "namespace": "ns", "generation": draw(st.integers(1, 9)),
                            "resourceVersion": "1"}
    if draw(st.booleans()):
        meta["annotations"] = draw(user_annotations)
    if draw(st.booleans()):
        meta["finalizers"] = draw(user_finalizers)
    spec: dict[str, Any] = {"type": "LoadBalancer"}
    if draw(st.booleans()):
        spec["loadBalancerIP"] = draw(ipv4)
    return {"metadata": meta, "spec": spec}


addresses = st.one_of(st.tuples(ipv4), st.tuples(ipv6), st.tuples(ipv4, ipv6))


def _user_view(obj: dict[str, Any]) -> tuple[Any, ...]:
    meta = obj.get("metadata", {})
    return (
        {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith("vipam.io/")},
        [f for f in meta.get("finalizers") or [] if f != names.FINALIZER],
        obj.get("spec", {}).get("loadBalancerIP"),
    )


@given(services(), addresses, st.booleans())
def test_allocation_is_idempotent_and_release_restores_the_user_object(
    obj: dict[str, Any], ips: tuple[str, ...], set_lb_ip: bool
) -> None:
    original = copy.deepcopy(obj)
    allocated = desired.with_allocation(obj, ips, "pool", set_lb_ip) or obj
    assert obj == original  # writers never mutate their input
    assert desired.with_allocation(allocated, ips, "pool", set_lb_ip) is None
    assert names.FINALIZER in allocated["metadata"]["finalizers"]
    user_ip = original["spec"].get("loadBalancerIP")
    if user_ip:
        assert allocated["spec"]["loadBalancerIP"] == user_ip  # a request is never overwritten
    elif set_lb_ip and len(ips) == 1:
        assert allocated["spec"]["loadBalancerIP"] == ips[0]
    else:
        assert "loadBalancerIP" not in allocated["spec"]
    released = desired.without_allocation(allocated) or allocated
    assert desired.without_allocation(released) is None
    assert _user_view(released) == _user_view(original)
    assert not any(
        k.startswith("vipam.io/") for k in (released["metadata"].get("annotations") or {})
    )


@given(services(), addresses, st.text(min_size=1, max_size=20))
def test_status_writers_converge(obj: dict[str, Any], ips: tuple[str, ...], message: str) -> None:
    shown = desired.with_status(obj, ips, message) or obj
    assert desired.with_status(shown, ips, message) is None
    assert [e["ip"] for e in shown["status"]["loadBalancer"]["ingress"]] == list(ips)
    failed = desired.with_failure(shown, "PoolExhausted", message) or shown
    assert desired.with_failure(failed, "PoolExhausted", message) is None
    assert failed["status"]["loadBalancer"] == shown["status"]["loadBalancer"]
    cleared = desired.without_status(failed) or failed
    assert desired.without_status(cleared) is None
    assert not cleared["status"].get("loadBalancer", {}).get("ingress")
    assert all(c["type"] != names.CONDITION_ALLOCATED for c in cleared["status"]["conditions"])
