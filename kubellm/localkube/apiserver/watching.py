"""Watch streams: initial state, replay from a resourceVersion, live events, bookmarks.

The stream starts with synthetic ADDED events (RV empty or "0") or with the retained
events after the requested RV; an RV older than the retained history gets one
`ERROR` event with a 410 `Expired` Status and the stream ends, never an HTTP 410 (kopf
1.45 exits on that). Selectors are applied per event, and an object leaving the
selection is sent as DELETED, entering it as ADDED. Bookmarks carry the current global
RV and are sent only when nothing is queued, so they never run ahead of the events.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .errors import status_body
from .kinds import ResourceKind
from .selectors import FieldSelector, LabelSelector
from .storage import CLOSE, EXPIRE, Event, Store, Watcher

__all__ = ["WatchRequest", "stream_watch"]

BOOKMARK_INTERVAL = 30.0


class WatchRequest:
    def __init__(
        self,
        kind: ResourceKind,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        resource_version: str | None,
        bookmarks: bool,
        timeout: float | None,
        render: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> None:
        self.kind = kind
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.resource_version = resource_version
        self.bookmarks = bookmarks
        self.timeout = timeout if timeout else random.uniform(1800, 3600)
        self.render = render

    def selected(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        if self.labels and not self.labels.matches(obj):
            return False
        return not (self.fields and not self.fields.matches(obj))

    def translate(self, event: Event) -> tuple[str, dict[str, Any]] | None:
        """The event as this watcher sees it (selector transitions), or None to skip."""
        now = self.selected(event.obj)
        if event.type == "DELETED":
            return ("DELETED", event.obj) if now else None
        before = event.type == "MODIFIED" and self.selected(event.old)
        if now and before:
            return ("MODIFIED", event.obj)
        if now:
            return ("ADDED", event.obj)
        if before:
            return ("DELETED", event.obj)
        return None


def _line(etype: str, obj: dict[str, Any]) -> bytes:
    return (json.dumps({"type": etype, "object": obj}, separators=(",", ":")) + "\n").encode()


def _expired(rv: int, current: int) -> bytes:
    body = status_body(410, f"too old resource version: {rv} ({current})", reason="Expired")
    return _line("ERROR", body)


async def stream_watch(request: web.Request, store: Store, wr: WatchRequest) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    key = wr.kind.key
    initial: list[tuple[str, dict[str, Any]]] = []
    expired = False
    rv_text = wr.resource_version
    if rv_text in (None, "", "0"):
        initial = [("ADDED", o) for o in store.list(key, wr.namespace) if wr.selected(o)]
    else:
        try:
            since = int(rv_text)
        except ValueError:
            since = -1
        if since < 0 or store.too_old(key, since):
            expired = True
        else:
            for event in store.since(key, since):
                seen = wr.translate(event)
                if seen:
                    initial.append(seen)
    watcher = Watcher(key, wr.namespace)
    if not expired:
        store.add_watcher(watcher)
    try:
        await resp.prepare(request)
        if expired:
            await resp.write(
                _expired(int(rv_text or 0) if (rv_text or "").isdigit() else 0, store.rv)
            )
            return resp
        for etype, obj in initial:
            await resp.write(_line(etype, wr.render(obj)))
        deadline = time.monotonic() + wr.timeout
        next_bookmark = time.monotonic() + BOOKMARK_INTERVAL
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            wait = min(deadline, next_bookmark) - now
            try:
                item = await asyncio.wait_for(watcher.queue.get(), timeout=max(wait, 0.001))
            except TimeoutError:
                if wr.bookmarks and time.monotonic() >= next_bookmark:
                    bookmark = {
                        "kind": wr.kind.kind,
                        "apiVersion": wr.kind.api_version(),
                        "metadata": {"resourceVersion": str(store.rv)},
                    }
                    await resp.write(_line("BOOKMARK", bookmark))
                next_bookmark = time.monotonic() + BOOKMARK_INTERVAL
                continue
            if item == CLOSE:
                break
            if item == EXPIRE:
                await resp.write(_expired(store.rv, store.rv))
                break
            assert isinstance(item, Event)
            seen = wr.translate(item)
            if seen:
                await resp.write(_line(seen[0], wr.render(seen[1])))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        store.remove_watcher(watcher)
    return resp
