"""The Deployment controller: ReplicaSets per template, rolling updates, rollout status.

A Deployment owns ReplicaSets named `<deploy>-<template hash>` (label `pod-template-hash`)
and moves replicas from old to new within maxSurge/maxUnavailable (see :mod:`rollout`),
or all at once with `Recreate`; it keeps `revisionHistoryLimit` idle old sets, and writes
the status and the Progressing and Available conditions that `kubectl rollout status`
reads, including ProgressDeadlineExceeded when a rollout stalls.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from typing import Any

from localkube.client import DEPLOYMENTS, REPLICASETS, ApiError, KubeClient
from localkube.controllers.base import Clock, Controller, EventRecorder, Informer, Key
from localkube.controllers.meta import (
    find_condition,
    is_owned_by,
    now_str,
    owner_reference,
    parse_time,
    set_condition,
)
from localkube.controllers.replicasets import owner_key
from localkube.controllers.rollout import (
    HASH_LABEL,
    ReplicaSetView,
    new_rs_replicas,
    old_rs_scale_down,
    resolve_fenceposts,
    rollout_complete,
    template_hash,
    templates_equal,
)

__all__ = ["DeploymentController"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]
REVISION = "deployment.kubernetes.io/revision"


class DeploymentController(Controller):
    name = "deployment-controller"

    def __init__(
        self, client: KubeClient, deployments: Informer, rs: Informer, clock: Clock
    ) -> None:
        super().__init__()
        self.client = client
        self.deployments = deployments
        self.rs = rs
        self.clock = clock
        self.recorder = EventRecorder(client, "deployment-controller")
        deployments.add_handler(self.enqueue_obj)
        rs.add_handler(self._rs_event)

    def _rs_event(self, _etype: str, rs: JSON) -> None:
        key = owner_key(rs, "Deployment")
        if key:
            self.queue.add(key)

    async def _scale(self, d: JSON, rs: JSON, replicas: int) -> JSON:
        old = int((rs.get("spec") or {}).get("replicas", 0))
        obj = await self.client.patch(
            REPLICASETS,
            rs["metadata"]["namespace"],
            rs["metadata"]["name"],
            {
                "spec": {"replicas": replicas},
                "metadata": {
                    "annotations": {
                        "deployment.kubernetes.io/desired-replicas": str(
                            (d.get("spec") or {}).get("replicas", 1)
                        )
                    }
                },
            },
        )
        self.rs.upsert(obj)
        verb = "up" if replicas > old else "down"
        self.recorder.event(
            d,
            "Normal",
            "ScalingReplicaSet",
            f"Scaled {verb} replica set {rs['metadata']['name']} from {old} to {replicas}",
        )
        return obj

    async def reconcile(self, key: Key) -> float | None:
        d = self.deployments.get(*key)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return None
        ns, meta, spec = key[0], d["metadata"], d.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        owned = [rs for rs in self.rs.items(ns) if is_owned_by(rs, meta["uid"])]
        new = next(
            (
                rs
                for rs in owned
                if templates_equal((rs.get("spec") or {}).get("template") or {}, template)
            ),
            None,
        )
        old = [rs for rs in owned if rs is not new]
        max_rev = max(
            (
                int((rs["metadata"].get("annotations") or {}).get(REVISION, "0") or 0)
                for rs in owned
            ),
            default=0,
        )
        created_new = False
        if spec.get("paused"):
            return await self._write_status(d, new, old, created_new)
        strategy = spec.get("strategy") or {}
        surge, unavailable = resolve_fenceposts(
            (strategy.get("rollingUpdate") or {}).get("maxSurge"),
            (strategy.get("rollingUpdate") or {}).get("maxUnavailable"),
            replicas,
        )
        recreate = strategy.get("type") == "Recreate"
        views = {rs["metadata"]["name"]: _view(rs) for rs in owned}
        if new is None:
            start = 0
            if recreate:
                start = (
                    0
                    if any(
                        views[o["metadata"]["name"]].spec_replicas or _status_replicas(o)
                        for o in old
                    )
                    else replicas
                )
            else:
                not_created = ReplicaSetView("", 0, 0)
                start = new_rs_replicas(
                    replicas, surge, not_created, [not_created, *views.values()]
                )
            new = await self._create_rs(d, template, start, max_rev + 1)
            created_new = True
            views[new["metadata"]["name"]] = _view(new)
        elif (
            (new["metadata"].get("annotations") or {}).get(REVISION) != str(max_rev)
            and old
            and any(_view(o).spec_replicas for o in old)
        ):
            obj = await self.client.patch(
                REPLICASETS,
                ns,
                new["metadata"]["name"],
                {"metadata": {"annotations": {REVISION: str(max_rev + 1)}}},
            )
            self.rs.upsert(obj)
            new = obj
        new_view = views[new["metadata"]["name"]]
        old_views = [views[o["metadata"]["name"]] for o in old]
        if recreate:
            for o in old:
                if _view(o).spec_replicas:
                    await self._scale(d, o, 0)
            if not any(_status_replicas(o) for o in old) and new_view.spec_replicas != replicas:
                new = await self._scale(d, new, replicas)
        else:
            target = new_rs_replicas(replicas, surge, new_view, [new_view, *old_views])
            if target != new_view.spec_replicas:
                new = await self._scale(d, new, target)
                new_view = _view(new)
            plan = old_rs_scale_down(replicas, unavailable, new_view, old_views)
            by_name = {o["metadata"]["name"]: o for o in old}
            for name, count in plan.items():
                by_name[name] = await self._scale(d, by_name[name], count)
            old = list(by_name.values())
        await self._cleanup(d, old)
        await self._set_revision(d, new)
        return await self._write_status(d, new, old, created_new)

    async def _create_rs(self, d: JSON, template: JSON, replicas: int, revision: int) -> JSON:
        meta, spec = d["metadata"], d.get("spec") or {}
        h = template_hash(template)
        tmpl = copy.deepcopy(template)
        tmpl.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        body: JSON = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{h}",
                "namespace": meta["namespace"],
                "labels": dict(tmpl["metadata"]["labels"]),
                "annotations": {
                    REVISION: str(revision),
                    "deployment.kubernetes.io/desired-replicas": str(spec.get("replicas", 1)),
                },
                "ownerReferences": [owner_reference(d)],
            },
            "spec": {
                "replicas": replicas,
                "minReadySeconds": spec.get("minReadySeconds", 0),
                "selector": selector,
                "template": tmpl,
            },
        }
        try:
            rs = await self.client.create(REPLICASETS, meta["namespace"], body)
        except ApiError as exc:
            if exc.status != 409:
                raise
            rs = await self.client.get(REPLICASETS, meta["namespace"], body["metadata"]["name"])
            if not is_owned_by(rs, meta["uid"]):
                raise
        self.rs.upsert(rs)
        self.recorder.event(
            d,
            "Normal",
            "ScalingReplicaSet",
            f"Scaled up replica set {rs['metadata']['name']} from 0 to {replicas}",
        )
        return rs

    async def _cleanup(self, d: JSON, old: list[JSON]) -> None:
        limit = int((d.get("spec") or {}).get("revisionHistoryLimit", 10))
        idle = [o for o in old if not _view(o).spec_replicas and not _status_replicas(o)]
        idle.sort(
            key=lambda o: int((o["metadata"].get("annotations") or {}).get(REVISION, "0") or 0)
        )
        for o in idle[: max(0, len(idle) - limit)]:
            try:
                await self.client.delete(
                    REPLICASETS, o["metadata"]["namespace"], o["metadata"]["name"]
                )
                self.rs.forget(o)
            except ApiError as exc:
                if not exc.not_found:
                    raise

    async def _set_revision(self, d: JSON, new: JSON) -> None:
        rev = (new["metadata"].get("annotations") or {}).get(REVISION)
        if rev and (d["metadata"].get("annotations") or {}).get(REVISION) != rev:
            obj = await self.client.patch(
                DEPLOYMENTS,
                d["metadata"]["namespace"],
                d["metadata"]["name"],
                {"metadata": {"annotations": {REVISION: rev}}},
            )
            self.deployments.upsert(obj)
            d.clear()
            d.update(obj)

    async def _write_status(
        self, d: JSON, new: JSON | None, old: list[JSON], created_new: bool
    ) -> float | None:
        spec = d.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        all_rs = [rs for rs in [new, *old] if rs is not None]
        st = [rs.get("status") or {} for rs in all_rs]
        total = sum(int(s.get("replicas", 0)) for s in st)
        ready = sum(int(s.get("readyReplicas", 0)) for s in st)
        available = sum(int(s.get("availableReplicas", 0)) for s in st)
        updated = int(((new or {}).get("status") or {}).get("replicas", 0)) if new else 0
        _, unavailable_allowed = resolve_fenceposts(
            ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxSurge"),
            ((spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxUnavailable"),
            replicas,
        )
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            unavailable_allowed = replicas
        old_status = d.get("status") or {}
        conditions = list(old_status.get("conditions") or [])
        now = now_str()
        if available >= replicas - unavailable_allowed:
            conditions = set_condition(
                conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                now=now,
                update_time=True,
            )
        else:
            conditions = set_condition(
                conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                now=now,
                update_time=True,
            )
        rs_name = (new or {}).get("metadata", {}).get("name", "")
        complete = new is not None and rollout_complete(replicas, updated, total, available)
        progressing = find_condition(conditions, "Progressing")
        counts = {
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
        }
        moved = any(int(old_status.get(k, 0)) != v for k, v in counts.items())
        requeue: float | None = None
        deadline = spec.get("progressDeadlineSeconds", 600)
        if complete:
            conditions = set_condition(
                conditions,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
                now=now,
                update_time=True,
            )
        elif created_new:
            conditions = set_condition(
                conditions,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                f'Created new replica set "{rs_name}"',
                now=now,
                update_time=True,
            )
        elif progressing is None or moved or progressing.get("reason") == "NewReplicaSetAvailable":
            conditions = set_condition(
                conditions,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" is progressing.',
                now=now,
                update_time=True,
            )
            for c in conditions:  # progress refreshes lastUpdateTime even without a flip
                if c["type"] == "Progressing":
                    c["lastUpdateTime"] = now
        if (
            not complete
            and deadline is not None
            and (progressing := find_condition(conditions, "Progressing"))
        ):
            since = parse_time(progressing.get("lastUpdateTime")) or dt.datetime.now(dt.UTC)
            elapsed = (dt.datetime.now(dt.UTC) - since).total_seconds()
            limit = self.clock.seconds(float(deadline))
            if progressing.get("reason") != "ProgressDeadlineExceeded" and elapsed >= limit:
                conditions = set_condition(
                    conditions,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    f'ReplicaSet "{rs_name}" has timed out progressing.',
                    now=now,
                    update_time=True,
                )
                self.recorder.event(
                    d,
                    "Warning",
                    "ProgressDeadlineExceeded",
                    f"Deployment {d['metadata']['name']} has timed out progressing",
                )
            elif progressing.get("reason") != "ProgressDeadlineExceeded":
                requeue = max(0.05, limit - elapsed + 0.05)
        status: JSON = {
            "observedGeneration": d["metadata"].get("generation", 1),
            **counts,
            "unavailableReplicas": max(0, replicas - available),
            "conditions": conditions,
        }
        if status != {k: old_status.get(k) for k in status}:
            obj = await self.client.patch_status(
                DEPLOYMENTS, d["metadata"]["namespace"], d["metadata"]["name"], status
            )
            self.deployments.upsert(obj)
        return requeue


def _view(rs: JSON) -> ReplicaSetView:
    return ReplicaSetView(
        name=rs["metadata"]["name"],
        spec_replicas=int((rs.get("spec") or {}).get("replicas", 0)),
        available=int((rs.get("status") or {}).get("availableReplicas", 0)),
        created=str(rs["metadata"].get("creationTimestamp") or ""),
    )


def _status_replicas(rs: JSON) -> int:
    return int((rs.get("status") or {}).get("replicas", 0))
