"""An in-process Kubernetes API emulator speaking real HTTP, for tests and the playground.

It keeps the semantics controllers depend on (resourceVersion, 409/410, status subresource,
patch flavours, finalizers, watch with bookmarks, validation) so their bugs show up here, not
in production. Usage::

    async with Emulator(crd_paths=[Path("config/crd")]) as emu:
        emu.write_kubeconfig(tmp / "kubeconfig")   # for kubernetes-asyncio or kubectl
        emu.faults.fail_next(2, 429, retry_after=1)
        emu.stats.count("patch", "services")       # API cost assertions

Its behaviour tests (tests/integration/emulator) run against it and against a real
kube-apiserver with the same assertions, so it cannot drift from the real server unnoticed.

Deliberately not emulated (a test needing one of these needs the real server): authentication
and RBAC (any token is accepted), admission webhooks, CEL `x-kubernetes-validations`,
server-side apply (`application/apply-patch+yaml` gets 415), protobuf (kubectl's `create`
sends it: use `apply`), ownerReference garbage collection, CRD conversion webhooks (versions
of one CRD share storage, only apiVersion is rewritten), OpenAPI schemas (the v3 documents
carry only what kubectl needs to validate on the server side, so `kubectl explain` does not
work), kube-controller-manager's work other than the namespace controller (which it does
itself: deleting a namespace empties and removes it).

Deliberate differences, each stated in the test that shows it: Service ports merge by
(port, protocol) under strategic merge (upstream keys them by port alone and overwrites a
TCP+UDP pair); bookmarks every `bookmark_interval` seconds and at a watch's timeout (upstream:
about once a minute); the watch history is kept per resource (`history_size` events each);
fault injection (`faults`) and the request counter (`stats`). ClusterIPs and NodePorts are
allocated lowest-free first from the ranges devkit.apiserver gives the real server.
"""

from devkit.emulator.emulator import Emulator
from devkit.emulator.faults import Faults
from devkit.emulator.stats import RequestStats
from devkit.emulator.thread import EmulatorThread

__all__ = ["Emulator", "EmulatorThread", "Faults", "RequestStats"]
