"""The answers the gateway gives itself, and the settings its parts share.

Holding, forwarding and the request handler each refuse requests (no such model, no
replica within the hold timeout, every replica failed); they raise `Problem`, and the
handler turns it into one OpenAI-style error body with an optional Retry-After, in one
place. `GatewaySettings` lives here too, beside the only other thing all three import.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

__all__ = ["GatewaySettings", "Problem"]


@dataclass(frozen=True)
class GatewaySettings:
    #: longest wait for a ready endpoint (scale from zero) before answering 503
    hold_timeout: float = 120.0
    #: requests held per LLM at most; more are answered 503 at once
    max_held: int = 256
    #: seconds to open a connection to a pod before trying another
    connect_timeout: float = 3.0
    #: largest request body accepted
    max_body_bytes: int = 16 * 1024 * 1024
    #: idle keep-alive connections to pods are closed after this (below uvicorn's 5 s, so
    #: the gateway never reuses a connection the pod is closing)
    upstream_keepalive: float = 3.0
    #: Retry-After of a 503 for an LLM with no release yet, or a full hold queue
    retry_after: int = 5
    #: seconds between the gateway's own readiness checks of a starting pod while requests
    #: wait for it (0: wait for the kubelet's Ready only)
    probe_interval: float = 0.1


class Problem(Exception):
    """An answer the gateway gives itself (OpenAI error body)."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        *,
        retry_after: int | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.retry_after, self.kind = retry_after, kind

    def response(self) -> web.Response:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after else None
        body = {"error": {"message": self.message, "type": self.kind, "code": self.code}}
        return web.json_response(body, status=self.status, headers=headers)
