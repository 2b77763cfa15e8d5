"""Running the app under uvicorn, with a shutdown that loses no request.

On SIGTERM (what Kubernetes sends when a pod is deleted, e.g. after a promotion moved
traffic away) the server turns not-ready at once, so ``/readyz`` fails and the endpoint
is removed; new generation requests get a 503 from that moment; requests already queued
or generating run to completion. Only when none is left, or the grace period is over,
does uvicorn close its sockets and exit 0. A second SIGTERM/SIGINT exits at once.
If loading the model fails, the process exits 1 after writing the reason to the
termination log, so ``kubectl describe pod`` shows why.
"""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType

import uvicorn

from kubellm.serving.app import create_app
from kubellm.serving.lifecycle import ServerState

__all__ = ["DrainingServer", "serve"]

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a drain phase between the signal and the exit."""

    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self.state = state
        self.drain_deadline: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain_deadline is not None or (sig == signal.SIGINT and self.state.inflight == 0):
            super().handle_exit(sig, frame)
            return
        grace = self.state.settings.shutdown_grace
        log.info("signal %s: draining (%d in flight, grace %.0fs)", sig, self.state.inflight, grace)
        self.state.status = "draining"
        self.drain_deadline = time.monotonic() + grace

    async def on_tick(self, counter: int) -> bool:
        if await super().on_tick(counter):
            return True
        if self.state.status == "failed":
            return True
        if self.drain_deadline is None:
            return False
        engine = self.state.engine
        busy = self.state.inflight > 0 or (
            engine is not None and (engine.running > 0 or engine.waiting > 0)
        )
        if not busy:
            log.info("drained; exiting")
            return True
        if time.monotonic() >= self.drain_deadline:
            log.warning("grace period over with %d requests in flight", self.state.inflight)
            return True
        return False


def serve(state: ServerState, host: str, port: int) -> int:
    """Serve until drained; the exit code says whether the model ever loaded."""
    app = create_app(state)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        lifespan="on",
    )
    server = DrainingServer(config, state)
    server.run()
    if state.status == "failed":
        from kubellm.termination import write_termination_message

        write_termination_message({"component": "serve", "error": state.error or "load failed"})
        log.error("model failed to load: %s", state.error)
        return 1
    return 0
