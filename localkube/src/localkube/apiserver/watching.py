"""Watch streams: initial state, replay from a resourceVersion, live events, bookmarks.

A watch is one of three streams, chosen by its (defaulted) :class:`ListOptions`:

* WatchList (`sendInitialEvents=true`, which is also what a watch from resourceVersion
  "" or "0" defaults to): synthetic ADDED events for the current state, then, when
  `allowWatchBookmarks=true`, one BOOKMARK at the snapshot's resourceVersion annotated
  `k8s.io/initial-events-end: "true"`, then the changes after it. A resourceVersion given
  with `NotOlderThan` is a floor: the snapshot is the current state once the store has
  reached it; after 3 s without, the stream is one `ERROR` event with a 504 `Timeout`
  Status (`ResourceVersionTooLarge`), as kube-apiserver's watch cache answers;
* `sendInitialEvents=false` from ""/"0": the changes from now on;
* from a resourceVersion: the retained events after it; an RV older than the retained
  history gets one `ERROR` event with a 410 `Expired` Status and the stream ends, never an
  HTTP 410 (kopf 1.45 exits on that).

A resourceVersion that is not a number is an HTTP 500 (upstream's storage error). Selectors
are applied per event, and an object leaving the selection is sent as DELETED,
entering it as ADDED. Periodic bookmarks carry the current global RV and are sent only when
nothing is queued, so they never run ahead of the events.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .errors import ApiError, status_body
from .kinds import ResourceKind
from .listoptions import ListOptions
from .selectors import FieldSelector, LabelSelector
from .storage import CLOSE, EXPIRE, Event, Store, Watcher

__all__ = ["INITIAL_EVENTS_END", "WatchRequest", "stream_watch"]

BOOKMARK_INTERVAL = 30.0
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
TOO_LARGE_WAIT = 3.0  # upstream's watch cache waits this long for a requested RV

Render = Callable[[dict[str, Any]], dict[str, Any]]


class WatchRequest:
    def __init__(
        self,
        kind: ResourceKind,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        options: ListOptions,
        timeout: float | None,
        render: Render,
        render_bookmark: Render | None = None,
    ) -> None:
        self.kind = kind
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.options = options
        self.timeout = timeout if timeout else random.uniform(1800, 3600)
        self.render = render
        self.render_bookmark = render_bookmark or (lambda obj: obj)

    @property
    def bookmarks(self) -> bool:
        return self.options.allow_watch_bookmarks

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

    def bookmark(self, rv: int, initial_events_end: bool = False) -> dict[str, Any]:
        """A BOOKMARK object: only kind, apiVersion and metadata.resourceVersion (+ marker)."""
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_events_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        obj = {"kind": self.kind.kind, "apiVersion": self.kind.api_version(), "metadata": meta}
        return self.render_bookmark(obj)


def _line(etype: str, obj: dict[str, Any]) -> bytes:
    return (json.dumps({"type": etype, "object": obj}, separators=(",", ":")) + "\n").encode()


def _expired(rv: int, current: int) -> bytes:
    body = status_body(410, f"too old resource version: {rv} ({current})", reason="Expired")
    return _line("ERROR", body)


def _parse_resource_version(text: str) -> int:
    """The request's RV as a number ("" and "0" are 0).

    An unparsable one is a 500 with the storage layer's message, as kube-apiserver answers.
    """
    if text in ("", "0"):
        return 0
    if not text.isdigit():
        raise ApiError(
            500,
            f'resourceVersion: Invalid value: "{text}": strconv.ParseUint: parsing "{text}": '
            "invalid syntax",
            reason="",
        )
    return int(text)


async def _reached(store: Store, rv: int) -> bool:
    """Wait up to TOO_LARGE_WAIT until the store's RV is at least `rv`."""
    deadline = time.monotonic() + TOO_LARGE_WAIT
    while store.rv < rv:
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def _too_large(rv: int, current: int) -> bytes:
    """Upstream's answer to a WatchList floor the store never reached: an ERROR 504 event."""
    body = status_body(
        504,
        f"Timeout: Too large resource version: {rv}, current: {current}",
        reason="Timeout",
        causes=[{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
        retry_after=1,
    )
    return _line("ERROR", body)


def _first_events(
    store: Store, wr: WatchRequest, rv: int
) -> tuple[list[tuple[str, dict[str, Any]]], int | None] | None:
    """The events before the live ones and the initial-events-end RV; None when expired.

    Synchronous on purpose: the caller registers its watcher right after, with no await in
    between, so no event falls between this snapshot and the watcher's queue.
    """
    key = wr.kind.key
    if wr.options.send_initial_events:
        initial = [("ADDED", o) for o in store.list(key, wr.namespace) if wr.selected(o)]
        return initial, store.rv if wr.options.allow_watch_bookmarks else None
    if rv == 0:  # sendInitialEvents=false from ""/"0": the changes from now on
        return [], None
    if store.too_old(key, rv):
        return None
    replay = [seen for event in store.since(key, rv) if (seen := wr.translate(event))]
    return replay, None


async def stream_watch(request: web.Request, store: Store, wr: WatchRequest) -> web.StreamResponse:
    rv = _parse_resource_version(wr.options.resource_version)  # a 500 before any streaming
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    watcher = Watcher(wr.kind.key, wr.namespace)
    try:
        await resp.prepare(request)
        if wr.options.send_initial_events and not await _reached(store, rv):
            await resp.write(_too_large(rv, store.rv))
            return resp
        first = _first_events(store, wr, rv)
        if first is None:
            await resp.write(_expired(rv, store.rv))
            return resp
        store.add_watcher(watcher)
        initial, initial_end = first
        for etype, obj in initial:
            await resp.write(_line(etype, wr.render(obj)))
        if initial_end is not None:
            await resp.write(_line("BOOKMARK", wr.bookmark(initial_end, initial_events_end=True)))
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
                    await resp.write(_line("BOOKMARK", wr.bookmark(store.rv)))
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
