"""An in-process Kubernetes API emulator speaking real HTTP, for tests and the playground.

It keeps the semantics controllers depend on (resourceVersion, 409/410, status subresource,
patch flavours, finalizers, watch with bookmarks) so their bugs show up here, not in production.
"""

from ccm.emulator.emulator import Emulator
from ccm.emulator.faults import Faults
from ccm.emulator.stats import RequestStats
from ccm.emulator.thread import EmulatorThread

__all__ = ["Emulator", "EmulatorThread", "Faults", "RequestStats"]
