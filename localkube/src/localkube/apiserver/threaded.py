"""Run an :class:`ApiServer` on its own asyncio loop in a background thread.

Tests and the benchmark drive the server with blocking clients (kubectl subprocesses,
the `kubernetes` client, kopf's runner) from the main thread; the server needs a running
loop of its own. `with ThreadedApiServer() as server:` starts it and stops it on exit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from . import ApiServer
from .auth import write_private

__all__ = ["ThreadedApiServer"]

T = TypeVar("T")


class ThreadedApiServer:
    def __init__(self, **kwargs: Any) -> None:
        self.server = ApiServer(**kwargs)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="localkube-apiserver", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> ThreadedApiServer:
        self._thread.start()
        self.run(self.server.start())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self.run(self.server.stop(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 30) -> T:
        """Call `fn` on the server's loop (for touching server state safely)."""
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def invoke() -> None:
            try:
                fut.set_result(fn())
            except BaseException as e:
                fut.set_exception(e)

        self.loop.call_soon_threadsafe(invoke)
        return fut.result(timeout)

    @property
    def url(self) -> str:
        return self.server.url

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        return write_private(path, self.server.kubeconfig(namespace))

    def __enter__(self) -> ThreadedApiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
