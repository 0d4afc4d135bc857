"""Run an `Emulator` on its own event loop in a daemon thread, for sync code and kubectl tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from devkit.emulator.emulator import Emulator

T = TypeVar("T")


class EmulatorThread:
    """`with EmulatorThread(**emulator_kwargs) as emu:`; use `call()` to run coroutines such as
    `emu.stop()` on the emulator's loop from the calling thread."""

    def __init__(self, **emulator_kwargs: Any) -> None:
        self._kwargs = emulator_kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="vipam-emulator")
        self.emulator: Emulator | None = None

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def run(self, function: Any, *args: Any) -> Any:
        """Run a plain function on the emulator's loop (e.g. a Faults method), thread-safely."""

        async def invoke() -> Any:
            return function(*args)

        return self.call(invoke())

    def __enter__(self) -> Emulator:
        self._thread.start()

        async def build() -> Emulator:
            emulator = Emulator(**self._kwargs)
            await emulator.start()
            return emulator

        self.emulator = self.call(build())
        return self.emulator

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.emulator is not None:
            self.call(self.emulator.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
