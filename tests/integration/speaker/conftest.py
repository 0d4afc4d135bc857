"""The speaker suites run against a real kube-apiserver (tests/realkube.py): the speakers with
the vipam-speaker ServiceAccount's token, the controller with vipam-controller's, so the
server enforces config/rbac (a 403 to either fails the test at teardown).

`emu` keeps its name for the assertion view (`get_object`, `list_objects`, `stats`): here it
is a `RealApi`, whose `stats` count the requests the server served (apiserver_request_total).
"""

from __future__ import annotations

from tests.integration.realfixtures import (  # noqa: F401
    emu,
    kube,
    kubeconfig,
    speaker_kubeconfig,
)
