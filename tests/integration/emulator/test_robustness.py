"""Malformed requests get a Status with a 4xx code, never a crash (500) or a non-JSON body.

Hypothesis generates bodies of the wrong shape for every write verb on built-in and custom
resources; a 500 here means the emulator would hide a client bug behind its own.

Emulator only: "never a 500" is the emulator's own robustness, and the real server does not
have it (a strategic-merge `$patch` whose value is an object gets `500 unknown patch type`).
Run differentially on the same generated bodies, the two servers agreed on the status code
for about 9 in 10 (2026-11-30, 200 bodies); the rest are error-code choices on nonsense
(422 against 400 for a null or list where an object belongs, a null strategic patch that the
real server takes as a no-op), noted in issue 10's report rather than reproduced here.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit.emulator import Emulator
from tests.integration.emulator.conftest import WIDGETS_CRD

_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000),
                    st.sampled_from(["", "x", "TCP", "LoadBalancer", "192.0.2.1", "True"]))
_VALUE = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["name", "port", "protocol", "type", "ip", "labels",
                                         "spec", "status", "metadata", "ports", "ingress",
                                         "loadBalancer", "conditions", "finalizers",
                                         "color", "size", "$patch", "op", "path", "value"]),
                        inner, max_size=4)),
    max_leaves=10,
)
_BODY = st.one_of(
    _VALUE,
    st.fixed_dictionaries({"metadata": st.one_of(_VALUE, st.fixed_dictionaries(
        {"name": st.sampled_from(["a", "b"])}, optional={"labels": _VALUE,
                                                          "finalizers": _VALUE,
                                                          "annotations": _VALUE}))},
                          optional={"spec": _VALUE, "status": _VALUE}),
)
PATHS = [
    "/api/v1/namespaces/default/services",
    "/api/v1/namespaces/default/configmaps",
    "/apis/coordination.k8s.io/v1/namespaces/default/leases",
    "/apis/events.k8s.io/v1/namespaces/default/events",
    "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
    "/apis/example.test/v1/namespaces/default/widgets",
]
SEEDS = {
    PATHS[0]: {"metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}},
    PATHS[1]: {"metadata": {"name": "a"}},
    PATHS[2]: {"metadata": {"name": "a"}, "spec": {}},
    PATHS[3]: {"metadata": {"name": "a"}, "eventTime": "2026-01-01T00:00:00.000000Z",
               "reportingController": "x", "reportingInstance": "y", "action": "A",
               "reason": "R", "type": "Normal",
               "regarding": {"kind": "Service", "namespace": "default", "name": "x"}},
    PATHS[4]: {"metadata": {"name": "a"}, "addressType": "IPv4", "endpoints": []},
    PATHS[5]: {"apiVersion": "example.test/v1", "kind": "Widget", "metadata": {"name": "a"},
               "spec": {"color": "red"}},
}
CONTENT_TYPES = ["application/json", "application/merge-patch+json",
                 "application/strategic-merge-patch+json", "application/json-patch+json"]


async def _exercise(emu: Emulator, session: aiohttp.ClientSession, path: str, method: str,
                    content_type: str, body: Any) -> None:
    """Send `body` to the collection (POST) or to the seeded object and, for kinds with a
    status subresource, to its /status too."""
    target = emu.url + path + ("" if method == "POST" else "/a")
    urls = [target]
    if method != "POST" and path.endswith(("/services", "/widgets")):
        urls.append(target + "/status")
    for url in urls:
        async with session.request(method, url, data=json.dumps(body),
                                   headers={"Content-Type": content_type}) as response:
            text = await response.text()
            assert response.status < 500, (method, url, body, text)
            parsed = json.loads(text)
            assert isinstance(parsed, dict) and "kind" in parsed, text


@given(body=_BODY, path=st.sampled_from(PATHS), method=st.sampled_from(["POST", "PUT", "PATCH"]),
       content_type=st.sampled_from(CONTENT_TYPES))
@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_malformed_writes_never_crash(body: Any, path: str, method: str,
                                      content_type: str) -> None:
    async def scenario() -> None:
        async with Emulator(crd_paths=[WIDGETS_CRD]) as emu, aiohttp.ClientSession() as session:
            async with session.post(emu.url + path, json=SEEDS[path]) as seeded:
                assert seeded.status == 201, await seeded.text()
            await _exercise(emu, session, path, method, content_type, body)

    asyncio.run(scenario())
