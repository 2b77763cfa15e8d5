"""The container's half of localkube's `http-errors` pod fault: an ASGI wrapper.

The pod site (`sitecustomize.py`) wraps the app uvicorn serves in :class:`HttpFaultApp`
when the container imports uvicorn; the kubelet half is `localkube.controllers.httpfaults`,
whose docstring says why the fault lives here. The wrapper reads the fault file named by
`KUBELLM_HTTP_FAULTS` again whenever it changes (one `stat` per request), so a fault added
or cleared while the container runs takes effect on its next request.

With a fault `{"rate": r, "status": s, "exempt": [paths]}`, of the requests to other paths
than `exempt` (the pod's probe paths) the n-th is answered with `s` exactly when
`floor(n * r)` grows, so that any run of requests holds `rate` of errors to within one,
spread evenly: a test can count on the share without the noise of a random draw. The
count starts again when the fault changes. The error's body is an OpenAI-style JSON error
and its header `x-localkube-fault: http-errors` tells it from the app's own failures.
Dependency-free: it runs in every uvicorn container.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ENV", "FaultFile", "HttpFaultApp", "patch_uvicorn_config"]

ENV = "KUBELLM_HTTP_FAULTS"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class FaultFile:
    """The fault file's current fault, and the deterministic choice of failed requests."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._key: tuple[int, int, int] | None = None
        self.fault: dict[str, Any] = {}
        self.counted = 0

    def current(self) -> dict[str, Any]:
        try:
            st = os.stat(self.path)
        except OSError:
            self._set({})
            self._key = None
            return self.fault
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != self._key:
            try:
                with open(self.path) as f:
                    fault = json.load(f)
                self._key = key
                self._set(fault if isinstance(fault, dict) else {})
            except (OSError, ValueError):
                pass  # being replaced: the previous fault holds one more request
        return self.fault

    def _set(self, fault: dict[str, Any]) -> None:
        if fault != self.fault:
            self.fault = fault
            self.counted = 0

    def failure(self, path: str) -> int | None:
        """The status to answer this request with, or None to pass it to the app."""
        fault = self.current()
        rate = float(fault.get("rate") or 0.0)
        if rate <= 0 or path in (fault.get("exempt") or ()):
            return None
        n = self.counted
        self.counted += 1
        if math.floor((n + 1) * rate + 1e-9) > math.floor(n * rate + 1e-9):
            return int(fault.get("status") or 500)
        return None


class HttpFaultApp:
    """ASGI middleware: a share of HTTP requests answered by the fault, not the app."""

    def __init__(self, app: App, faults: FaultFile) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = (
            self.faults.failure(str(scope.get("path", ""))) if scope["type"] == "http" else None
        )
        if status is None:
            await self.app(scope, receive, send)
            return
        while (await receive()).get("more_body"):  # read the request to keep the connection
            pass
        body = json.dumps(
            {
                "error": {
                    "message": f"localkube pod fault: http-errors answered {status}",
                    "type": "localkube_fault",
                    "code": status,
                }
            }
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-localkube-fault", b"http-errors"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def patch_uvicorn_config(module: Any) -> None:
    """Make `uvicorn.config.Config.load` wrap the app it loads in :class:`HttpFaultApp`."""
    path = os.environ.get(ENV, "")
    config = getattr(module, "Config", None)
    if not path or config is None or getattr(config.load, "_localkube_faults", False):
        return
    original = config.load
    faults = FaultFile(path)

    def load(self: Any) -> None:
        original(self)
        self.loaded_app = HttpFaultApp(self.loaded_app, faults)

    load._localkube_faults = True  # type: ignore[attr-defined]
    config.load = load
