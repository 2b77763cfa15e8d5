"""Pod logs from the files the kubelet writes: `<log_dir>/<ns>/<pod>/<container>.log`.

`previous=true` reads `<container>.previous.log`. With `follow=true` the response streams
new bytes (polling every 0.2 s) until the pod is Succeeded/Failed or deleted.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp import web

from .errors import ApiError
from .storage import Store

__all__ = ["serve_log"]

POLL = 0.2


def _tail(data: bytes, lines: int) -> bytes:
    if lines <= 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


async def serve_log(
    request: web.Request, store: Store, log_dir: Path | None, pod: dict[str, Any]
) -> web.StreamResponse:
    q = request.query
    meta = pod["metadata"]
    containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    inits = [c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []]
    container = q.get("container") or (containers[0] if containers else "")
    if container not in containers and container not in inits:
        raise ApiError(
            400,
            f"container {container} is not valid for pod {meta['name']}",
        )
    suffix = ".previous.log" if q.get("previous") in ("true", "1") else ".log"
    path = (
        log_dir / meta.get("namespace", "") / meta["name"] / f"{container}{suffix}"
        if log_dir
        else None
    )
    data = path.read_bytes() if path and path.exists() else b""
    if "tailLines" in q:
        data = _tail(data, int(q["tailLines"]))
    follow = q.get("follow") in ("true", "1") and suffix == ".log"
    if not follow:
        return web.Response(body=data, content_type="text/plain")
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    await resp.write(data)
    offset = path.stat().st_size if path and path.exists() else 0
    key = ("/pods", meta.get("namespace", ""), meta["name"])
    try:
        while True:
            current = store.get(*key)
            done = (
                current is None
                or current["metadata"]["uid"] != meta["uid"]
                or (current.get("status") or {}).get("phase") in ("Succeeded", "Failed")
            )
            if path and path.exists():
                size = path.stat().st_size
                if size > offset:
                    with path.open("rb") as f:
                        f.seek(offset)
                        chunk = f.read(size - offset)
                    offset = size
                    await resp.write(chunk)
            if done:
                break
            await asyncio.sleep(POLL)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return resp
