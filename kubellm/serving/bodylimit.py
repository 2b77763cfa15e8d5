"""Refusing request bodies too large to be a valid request, before reading them.

A prompt limit alone does not protect a pod: FastAPI reads and parses the whole body
before any route can count tokens, so a client could make the server buffer gigabytes.
This ASGI middleware sits in front of the app and refuses a body over the limit the
state derives from the prompt limit (413, in OpenAI's error shape) without reading it.
"""

from __future__ import annotations

import json
from typing import Any

from kubellm.serving.errors import PayloadTooLarge, ServingError, error_body, headers_for
from kubellm.serving.lifecycle import ServerState

__all__ = ["BodyLimit"]


async def _send_error(send: Any, exc: ServingError) -> None:
    body = json.dumps(error_body(exc)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in headers_for(exc).items()]
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuses POST bodies over ``state.body_limit()`` with a 413 before reading the rest.

    A declared Content-Length over the limit is refused unread; a chunked body is read up
    to the limit and refused there. Under the limit the body is handed on as one piece.
    """

    def __init__(self, app: Any, state: ServerState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        limit = self.state.body_limit()
        too_large = PayloadTooLarge(
            f"the request body is over this server's limit of {limit} bytes "
            "(derived from --max-prompt-tokens; set --max-body-bytes to change it)"
        )
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _send_error(send, too_large)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = bool(message.get("more_body"))
            if size > limit:
                await _send_error(send, too_large)
                return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
