"""Informers, work queues and event recording: the plumbing every controller shares.

An :class:`Informer` lists then watches one resource and keeps a local cache, relisting on
410 Expired and re-watching from the last resourceVersion when a stream ends, as client-go
does. Controllers reconcile keys from a de-duplicating :class:`WorkQueue`; a reconcile
returns an optional delay after which the key is looked at again (timers such as
backoffs and deadlines). Writes made by a controller are put into its cache at once
(write-through), so a reconcile that runs before the watch event arrives never acts twice
on stale state, the job that client-go's "expectations" do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from localkube.client import EVENTS, ApiError, KubeClient, Resource, WatchExpired
from localkube.controllers.meta import key_of, now_str, random_string

__all__ = ["Clock", "Controller", "EventRecorder", "Informer", "WorkQueue"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]
Key = tuple[str, str]


@dataclass(frozen=True)
class Clock:
    """Scales every controller timing (backoffs, probe periods, deadlines, TTLs).

    `scale=0.1` makes a 10 s CrashLoopBackOff last 1 s; tests run the real state machines
    at a fraction of real time.
    """

    scale: float = 1.0

    def seconds(self, value: float) -> float:
        return max(0.0, float(value) * self.scale)


def _rv(obj: JSON) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class Informer:
    """A list+watch cache of one resource across all namespaces."""

    def __init__(self, client: KubeClient, resource: Resource) -> None:
        self.client = client
        self.resource = resource
        self.cache: dict[Key, JSON] = {}
        self.synced = asyncio.Event()
        self._handlers: list[Callable[[str, JSON], None]] = []
        self._task: asyncio.Task[None] | None = None

    def add_handler(self, handler: Callable[[str, JSON], None]) -> None:
        self._handlers.append(handler)

    def get(self, namespace: str, name: str) -> JSON | None:
        return self.cache.get((namespace, name))

    def items(self, namespace: str | None = None) -> list[JSON]:
        return [o for (ns, _), o in self.cache.items() if namespace is None or ns == namespace]

    def upsert(self, obj: JSON) -> None:
        """Write-through: record an object a controller just wrote (if not older)."""
        key = key_of(obj)
        old = self.cache.get(key)
        if old is not None and _rv(old) > _rv(obj):
            return
        self.cache[key] = obj

    def forget(self, obj: JSON) -> None:
        self.cache.pop(key_of(obj), None)

    def _emit(self, etype: str, obj: JSON) -> None:
        for h in self._handlers:
            try:
                h(etype, obj)
            except Exception:  # a buggy handler must not kill the informer
                log.exception("informer handler failed for %s", self.resource.plural)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"informer-{self.resource.plural}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _relist(self) -> str:
        items, rv = await self.client.list(self.resource)
        fresh = {key_of(o): o for o in items}
        for key, old in list(self.cache.items()):
            if key not in fresh:
                del self.cache[key]
                self._emit("DELETED", old)
        for key, obj in fresh.items():
            existed = key in self.cache
            self.cache[key] = obj
            self._emit("MODIFIED" if existed else "ADDED", obj)
        self.synced.set()
        return rv

    async def _run(self) -> None:
        rv = ""
        while True:
            try:
                if not rv:
                    rv = await self._relist()
                async for etype, obj in self.client.watch(self.resource, rv):
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if etype == "BOOKMARK":
                        continue
                    if etype == "DELETED":
                        self.cache.pop(key_of(obj), None)
                    else:
                        obj.setdefault("kind", self.resource.kind)
                        obj.setdefault("apiVersion", self.resource.api_version)
                        self.cache[key_of(obj)] = obj
                    self._emit(etype, obj)
            except asyncio.CancelledError:
                raise
            except WatchExpired:
                rv = ""
            except Exception as exc:  # connection refused, API paused, injected faults
                log.debug("informer %s: %s; relisting", self.resource.plural, exc)
                rv = ""
                await asyncio.sleep(0.5)


class WorkQueue:
    """A de-duplicating queue of keys with delayed re-adds."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._pending: set[Key] = set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}

    def add(self, key: Key) -> None:
        if key not in self._pending:
            self._pending.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: Key, delay: float) -> None:
        loop = asyncio.get_running_loop()
        old = self._timers.get(key)
        when = loop.time() + delay
        if old is not None and old.when() <= when and not old.cancelled():
            return
        if old is not None:
            old.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def get(self) -> Key:
        key = await self._queue.get()
        self._pending.discard(key)
        return key

    def close(self) -> None:
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()


class Controller:
    """A reconcile loop over keys; subclasses implement :meth:`reconcile`."""

    name = "controller"

    def __init__(self) -> None:
        self.queue = WorkQueue()
        self._task: asyncio.Task[None] | None = None

    async def reconcile(self, key: Key) -> float | None:
        raise NotImplementedError

    def enqueue_obj(self, _etype: str, obj: JSON) -> None:
        self.queue.add(key_of(obj))

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        self.queue.close()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _loop(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                delay = await self.reconcile(key)
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                log.info("%s: %s/%s: %s; retrying", self.name, key[0], key[1], exc)
                delay = 0.5
            except Exception:
                log.exception("%s: reconcile of %s/%s failed", self.name, *key)
                delay = 1.0
            if delay is not None:
                self.queue.add_after(key, delay)


async def wait_synced(informers: Iterable[Informer], timeout: float = 30.0) -> None:
    await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in informers)), timeout)


class EventRecorder:
    """Posts core/v1 Events the way each real controller does (`source.component`)."""

    def __init__(self, client: KubeClient, component: str) -> None:
        self.client = client
        self.component = component
        self._tasks: set[asyncio.Task[None]] = set()

    def event(self, obj: JSON, etype: str, reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        now = now_str()
        body: JSON = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta.get('name', 'x')}.{random_string(16)}", "namespace": ns},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", ""),
                "kind": obj.get("kind", ""),
                "name": meta.get("name", ""),
                "namespace": ns,
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "type": etype,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": self.component, "host": "localkube-node"},
            "reportingComponent": self.component,
            "reportingInstance": "localkube-node",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        log.info(
            "%s: %s %s/%s %s: %s", self.component, etype, ns, meta.get("name"), reason, message
        )
        task = asyncio.create_task(self._post(ns, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, ns: str, body: JSON) -> None:
        for attempt in range(3):
            try:
                await self.client.create(EVENTS, ns, body)
                return
            except ApiError as exc:
                if exc.status in (404, 403, 409, 422):
                    return
            except Exception:
                pass
            await asyncio.sleep(0.2 * (attempt + 1))


Reconcile = Callable[[Key], Awaitable[float | None]]
