"""Give freed heap back to the operating system after a burst of work.

A burst of allocations leaves the process's heap at its high-water mark: glibc keeps freed
memory for reuse, so RSS stays where the burst took it even once the objects are gone.
`malloc_trim(0)` returns the free pages; it costs a few milliseconds, so the controller calls
it only when its queue has been idle for a while (see the manager's heartbeat).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def _trimmer() -> Callable[[], None]:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = getattr(libc, "malloc_trim", None)
    except OSError:
        trim = None
    if trim is None:  # not glibc (musl, macOS): nothing to do
        return lambda: None

    def release() -> None:
        trim(0)

    return release


release_free_memory = _trimmer()
