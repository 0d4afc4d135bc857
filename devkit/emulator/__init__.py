"""An in-process Kubernetes API emulator speaking real HTTP, for tests and the playground.

It keeps the semantics controllers depend on (resourceVersion, 409/410, status subresource,
patch flavours, finalizers, watch with bookmarks, validation) so their bugs show up here, not
in production. Usage::

    async with Emulator(crd_paths=[Path("config/crd")]) as emu:
        emu.write_kubeconfig(tmp / "kubeconfig")   # for kubernetes-asyncio or kubectl
        emu.faults.fail_next(2, 429, retry_after=1)
        emu.stats.count("patch", "services")       # API cost assertions

Deliberately not emulated (a test needing one of these needs a real cluster): authentication
and RBAC (any token is accepted), admission webhooks, CEL `x-kubernetes-validations`,
server-side apply (`application/apply-patch+yaml` gets 415), protobuf, ClusterIP/NodePort
allocation, ownerReference garbage collection, CRD conversion webhooks (versions of one CRD
share storage, only apiVersion is rewritten), OpenAPI schemas (the v3 documents carry only
what kubectl needs to validate on the server side, so `kubectl explain` does not work).

Deliberate choices where upstream is ambiguous: the watch history is kept per resource
(`history_size` events each, like the watch cache); bookmarks are sent when a watch is idle,
every `bookmark_interval` seconds and at its timeout; Service ports merge by (port, protocol)
under strategic merge; `status.loadBalancer.ingress` is atomic, as upstream declares it.
"""

from devkit.emulator.emulator import Emulator
from devkit.emulator.faults import Faults
from devkit.emulator.stats import RequestStats
from devkit.emulator.thread import EmulatorThread

__all__ = ["Emulator", "EmulatorThread", "Faults", "RequestStats"]
