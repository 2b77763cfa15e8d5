"""Deletion: options, finalizers, graceful pods, garbage collection, namespace teardown.

A DELETE either removes the object at once, or (finalizers present, Foreground/Orphan
policy, or a pod with a grace period) sets `deletionTimestamp` and leaves it. The
:class:`Collector` then finishes the job as the kube-controller-manager would, in a pass
scheduled (debounced) after every relevant event:

* `orphan`: strip the owner's ownerReferences from its dependents, drop the finalizer;
* `foregroundDeletion`: delete the dependents, drop the finalizer once no dependent with
  `blockOwnerDeletion` is left;
* background: delete every object whose owners (by uid) are all gone;
* terminating namespaces: delete their contents, then the namespace itself;
* CRDs being deleted: delete their custom resources, then drop the cleanup finalizer.

Pods are deleted gracefully: with a grace period > 0 (`gracePeriodSeconds` from the
options, else `spec.terminationGracePeriodSeconds`) the pod only gets `deletionTimestamp`
and `deletionGracePeriodSeconds`; the kubelet stops the process and then deletes the pod
with `gracePeriodSeconds=0`. A pod never scheduled (no `spec.nodeName`) or already
finished goes at once, as upstream.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from kubellm.api.timestamps import format_time

from . import crds
from .engine import Engine, not_found
from .errors import ApiError
from .kinds import ResourceKind
from .meta import clone
from .storage import Event

__all__ = ["Collector", "DeleteOptions"]

log = logging.getLogger("localkube.apiserver")

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
NAMESPACES = "/namespaces"
CRDS = "apiextensions.k8s.io/customresourcedefinitions"


class DeleteOptions:
    """DeleteOptions from the body and/or the query (the Python client uses the query)."""

    def __init__(self, body: Any, query: dict[str, str]) -> None:
        body = body if isinstance(body, dict) else {}
        self.policy: str | None = body.get("propagationPolicy") or query.get("propagationPolicy")
        orphan = body.get("orphanDependents", query.get("orphanDependents"))
        if self.policy is None and orphan is not None:
            self.policy = "Orphan" if str(orphan).lower() == "true" else "Background"
        grace = body.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
        self.grace: int | None = int(grace) if grace not in (None, "") else None
        self.preconditions: dict[str, str] = body.get("preconditions") or {}
        dry = body.get("dryRun") or query.get("dryRun")
        self.dry_run = bool(dry)
        if self.policy not in (None, "Background", "Foreground", "Orphan"):
            raise ApiError(400, f"unknown propagationPolicy {self.policy!r}")


def _owner_uids(obj: dict[str, Any]) -> list[str]:
    return [r.get("uid", "") for r in obj["metadata"].get("ownerReferences") or []]


class Collector:
    """Deletes objects and runs the garbage-collection passes for an :class:`Engine`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        engine.collector = self
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        engine.store.listeners.append(self._on_event)

    # -- DELETE ------------------------------------------------------------------------
    def delete(
        self, kind: ResourceKind, namespace: str | None, name: str, opts: DeleteOptions
    ) -> dict[str, Any]:
        store = self.engine.store
        obj = store.get(kind.key, namespace or "", name)
        if obj is None:
            raise not_found(kind, name)
        meta = obj["metadata"]
        pre = opts.preconditions
        problem = ""
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            problem = (
                f"the UID in the precondition ({pre['uid']}) does not match the UID in record "
                f"({meta['uid']}). The object might have been deleted and then recreated"
            )
        elif pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
            problem = (
                f"the ResourceVersion in the precondition ({pre['resourceVersion']}) does not "
                f"match the ResourceVersion in record ({meta['resourceVersion']}). The object "
                "might have been modified"
            )
        if problem:  # upstream names the kind here (`ConfigMap`, `Widget.example.com`)
            qualified = f"{kind.kind}.{kind.group}" if kind.group else kind.kind
            raise ApiError(
                409,
                f'Operation cannot be fulfilled on {qualified} "{name}": {problem}',
                reason="Conflict",
                name=name,
                group=kind.group,
                kind=kind.kind,
            )
        if opts.dry_run:
            return obj
        policy = opts.policy or ("Orphan" if kind.key == "batch/jobs" else "Background")
        grace = 0
        if kind.key == "/pods":
            grace = opts.grace if opts.grace is not None else _pod_grace(obj)
            phase = (obj.get("status") or {}).get("phase")
            if not (obj.get("spec") or {}).get("nodeName") or phase in ("Succeeded", "Failed"):
                grace = 0
        if meta.get("deletionTimestamp"):
            if kind.key == "/pods" and grace == 0 and not meta.get("finalizers"):
                return store.commit(kind.key, clone(obj), "DELETED")
            return obj
        new = clone(obj)
        nmeta = new["metadata"]
        finalizers: list[str] = list(nmeta.get("finalizers") or [])
        if policy == "Foreground" and FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
        if policy == "Orphan" and ORPHAN not in finalizers:
            finalizers.append(ORPHAN)
        if kind.key == NAMESPACES:
            new.setdefault("status", {})["phase"] = "Terminating"
        if kind.key == CRDS:
            crds.accept_crd(new, obj)
        if finalizers or grace > 0 or kind.key == NAMESPACES:
            if finalizers:
                nmeta["finalizers"] = finalizers
            when = datetime.now(UTC) + timedelta(seconds=grace)
            nmeta["deletionTimestamp"] = format_time(when)
            nmeta["deletionGracePeriodSeconds"] = grace
            if kind.has_generation:
                nmeta["generation"] = nmeta.get("generation", 1) + 1
            if kind.key == CRDS:
                crds.accept_crd(new, obj)
            return store.commit(kind.key, new, "MODIFIED")
        return store.commit(kind.key, new, "DELETED")

    def delete_collection(
        self, kind: ResourceKind, items: list[dict[str, Any]], opts: DeleteOptions
    ) -> list[dict[str, Any]]:
        out = []
        for obj in items:
            meta = obj["metadata"]
            try:
                out.append(self.delete(kind, meta.get("namespace"), meta["name"], opts))
            except ApiError as e:
                if e.code != 404:
                    raise
        return out

    # -- garbage collection --------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        meta = event.obj["metadata"]
        if (
            event.type == "DELETED"
            or meta.get("deletionTimestamp")
            or (event.type == "ADDED" and meta.get("ownerReferences"))
        ):
            self.schedule()

    def schedule(self) -> None:
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._scheduled = True
        loop.call_later(0.02, self._run)

    def _run(self) -> None:
        self._scheduled = False
        try:
            self.collect()
        except Exception:  # a GC bug must not take the API down
            log.exception("garbage collection pass failed")

    def collect(self) -> None:
        store = self.engine.store
        registry = self.engine.registry
        everything = list(store.all_items())
        uids = {o["metadata"]["uid"] for _, o in everything}
        dependents: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for key, obj in everything:
            for uid in _owner_uids(obj):
                dependents.setdefault(uid, []).append((key, obj))
        for key, obj in everything:
            kind = registry.get(key)
            if kind is None:
                continue
            meta = obj["metadata"]
            deps = dependents.get(meta["uid"], [])
            fins = meta.get("finalizers") or []
            if meta.get("deletionTimestamp"):
                if ORPHAN in fins:
                    for dkey, dep in deps:
                        self._strip_owner(dkey, dep, meta["uid"])
                    self._drop_finalizer(kind, obj, ORPHAN)
                    continue
                if FOREGROUND in fins:
                    blocking = False
                    for dkey, dep in deps:
                        self._delete_quietly(dkey, dep, "Background")
                        refs = dep["metadata"].get("ownerReferences") or []
                        if any(
                            r.get("uid") == meta["uid"] and r.get("blockOwnerDeletion")
                            for r in refs
                        ):
                            blocking = True
                    if not blocking:
                        self._drop_finalizer(kind, obj, FOREGROUND)
                    continue
                if key == NAMESPACES:
                    self._finish_namespace(obj)
                    continue
                if key == CRDS and crds.CLEANUP_FINALIZER in fins:
                    self._finish_crd(kind, obj)
                    continue
            owners = _owner_uids(obj)
            if owners and not any(uid in uids for uid in owners):
                self._delete_quietly(key, obj, "Background")

    def _delete_quietly(self, key: str, obj: dict[str, Any], policy: str) -> None:
        kind = self.engine.registry.get(key)
        if kind is None or obj["metadata"].get("deletionTimestamp"):
            return
        opts = DeleteOptions({"propagationPolicy": policy}, {})
        try:
            self.delete(kind, obj["metadata"].get("namespace"), obj["metadata"]["name"], opts)
        except ApiError:
            pass

    def _strip_owner(self, key: str, obj: dict[str, Any], uid: str) -> None:
        current = self.engine.store.get(
            key, obj["metadata"].get("namespace") or "", obj["metadata"]["name"]
        )
        if current is None:
            return
        new = clone(current)
        refs = [r for r in new["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
        if refs:
            new["metadata"]["ownerReferences"] = refs
        else:
            new["metadata"].pop("ownerReferences", None)
        self.engine.store.commit(key, new, "MODIFIED")

    def _drop_finalizer(self, kind: ResourceKind, obj: dict[str, Any], finalizer: str) -> None:
        new = clone(obj)
        fins = [f for f in new["metadata"].get("finalizers") or [] if f != finalizer]
        if fins:
            new["metadata"]["finalizers"] = fins
            self.engine.store.commit(kind.key, new, "MODIFIED")
        else:
            new["metadata"].pop("finalizers", None)
            self.engine.store.commit(kind.key, new, "DELETED")

    def _finish_namespace(self, ns: dict[str, Any]) -> None:
        name = ns["metadata"]["name"]
        remaining = 0
        for kind in self.engine.registry.all():
            if not kind.namespaced:
                continue
            for obj in self.engine.store.list(kind.key, name):
                remaining += 1
                self._delete_quietly(kind.key, obj, "Background")
        if remaining == 0 and not ns["metadata"].get("finalizers"):
            new = clone(ns)
            new.setdefault("spec", {})["finalizers"] = []
            self.engine.store.commit(NAMESPACES, new, "DELETED")

    def _finish_crd(self, crd_kind: ResourceKind, crd: dict[str, Any]) -> None:
        key = f"{crd['spec']['group']}/{crd['spec']['names']['plural']}"
        items = self.engine.store.list(key)
        for obj in items:
            self._delete_quietly(key, obj, "Background")
        if not items:
            self._drop_finalizer(crd_kind, crd, crds.CLEANUP_FINALIZER)


def _pod_grace(pod: dict[str, Any]) -> int:
    value = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    return int(value) if isinstance(value, int) else 30
