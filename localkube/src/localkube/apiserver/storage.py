"""Object storage, the global resourceVersion, the event history and watcher fan-out.

Everything runs on one asyncio loop, so a commit is atomic: it bumps the one global
resourceVersion, replaces the stored object (stored objects are never mutated, writers
commit a fresh copy), appends the event to a bounded history used to resume watches, and
puts it on the queue of every watcher of that resource. Watch start-up takes its snapshot
and registers its queue without yielding, so no event can fall between the two.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Event", "Store", "Watcher"]

log = logging.getLogger("localkube.apiserver")

ObjKey = tuple[str, str]  # (namespace or "", name)


@dataclass(frozen=True, slots=True)
class Event:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    key: str  # resource key "group/plural"
    obj: dict[str, Any]
    old: dict[str, Any] | None


CLOSE = "close"
EXPIRE = "expire"


@dataclass(eq=False)
class Watcher:
    key: str
    namespace: str | None
    queue: asyncio.Queue[Event | str] = field(default_factory=asyncio.Queue)


class Store:
    """In-memory objects per resource key, with optional JSON persistence."""

    def __init__(self, history: int = 10_000, state_file: Path | None = None) -> None:
        self.rv = 0
        self.objects: dict[str, dict[ObjKey, dict[str, Any]]] = {}
        self.history: deque[Event] = deque(maxlen=history)
        self.floor = 0  # watches from an RV below this are "too old" (410)
        self.key_floor: dict[str, int] = {}
        self.watchers: dict[str, set[Watcher]] = {}
        self.listeners: list[Callable[[Event], None]] = []
        self.state_file = state_file
        self._save_handle: asyncio.TimerHandle | None = None

    # -- reads -------------------------------------------------------------------------
    def get(self, key: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(key, {}).get((namespace, name))

    def list(self, key: str, namespace: str | None = None) -> builtins.list[dict[str, Any]]:
        bucket = self.objects.get(key, {})
        if namespace is None:
            return list(bucket.values())
        return [o for (ns, _), o in bucket.items() if ns == namespace]

    def count(self, key: str, namespace: str) -> int:
        return sum(1 for ns, _ in self.objects.get(key, {}) if ns == namespace)

    def all_items(self) -> Iterable[tuple[str, dict[str, Any]]]:
        for key, bucket in list(self.objects.items()):
            for obj in list(bucket.values()):
                yield key, obj

    # -- writes ------------------------------------------------------------------------
    def commit(self, key: str, obj: dict[str, Any], etype: str) -> dict[str, Any]:
        """Store (or, for DELETED, drop) `obj` under a new resourceVersion; fan out the event.

        `obj` must be a fresh dict owned by the store from now on.
        """
        meta = obj["metadata"]
        okey = (meta.get("namespace") or "", meta["name"])
        bucket = self.objects.setdefault(key, {})
        old = bucket.get(okey)
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        if etype == "DELETED":
            bucket.pop(okey, None)
        else:
            bucket[okey] = obj
        event = Event(self.rv, etype, key, obj, old)
        if len(self.history) == self.history.maxlen:
            self.floor = self.history[0].rv
        self.history.append(event)
        for w in self.watchers.get(key, ()):
            w.queue.put_nowait(event)
        for listener in self.listeners:
            listener(event)
        self._schedule_save()
        return obj

    # -- watch support -----------------------------------------------------------------
    def too_old(self, key: str, rv: int) -> bool:
        return rv < self.floor or rv < self.key_floor.get(key, 0)

    def since(self, key: str, rv: int) -> builtins.list[Event]:
        return [e for e in self.history if e.rv > rv and e.key == key]

    def add_watcher(self, watcher: Watcher) -> None:
        self.watchers.setdefault(watcher.key, set()).add(watcher)

    def remove_watcher(self, watcher: Watcher) -> None:
        self.watchers.get(watcher.key, set()).discard(watcher)

    def signal(self, key: str | None, message: str) -> int:
        """Send CLOSE or EXPIRE to the watchers of `key` (all when None)."""
        n = 0
        for k, ws in self.watchers.items():
            if key is None or k == key:
                for w in ws:
                    w.queue.put_nowait(message)
                    n += 1
        if message == EXPIRE:
            for k in [key] if key else list(self.objects) + list(self.watchers):
                self.key_floor[k] = self.rv
        return n

    # -- persistence -------------------------------------------------------------------
    def _schedule_save(self) -> None:
        if self.state_file is None or self._save_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.save()
            return
        self._save_handle = loop.call_later(0.2, self.save)

    def save(self) -> None:
        self._save_handle = None
        if self.state_file is None:
            return
        data = {
            "resourceVersion": self.rv,
            "objects": {k: list(b.values()) for k, b in self.objects.items() if b},
        }
        tmp = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.state_file)

    def load(self) -> bool:
        """Load persisted objects; True if a state file was read."""
        if self.state_file is None or not self.state_file.exists():
            return False
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError) as e:
            log.warning("ignoring unreadable state file %s: %s", self.state_file, e)
            return False
        self.rv = int(data.get("resourceVersion", 0))
        self.floor = self.rv  # history did not survive the restart
        for key, items in data.get("objects", {}).items():
            bucket = self.objects.setdefault(key, {})
            for obj in items:
                meta = obj["metadata"]
                bucket[(meta.get("namespace") or "", meta["name"])] = obj
        return True
