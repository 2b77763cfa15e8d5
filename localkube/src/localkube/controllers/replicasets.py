"""The ReplicaSet controller: keeps `spec.replicas` active pods and reports on them.

Pods are `<rs>-<5 chars>` (generateName), owned by the ReplicaSet, labelled and annotated
from its template. Extra pods go in the order the real controller picks them (unscheduled,
pending, not ready, newest first). Status: replicas, fullyLabeledReplicas, readyReplicas,
availableReplicas (Ready for `minReadySeconds`), observedGeneration.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from typing import Any

from localkube.client import PODS, REPLICASETS, ApiError, KubeClient
from localkube.controllers.base import Clock, Controller, EventRecorder, Informer, Key
from localkube.controllers.meta import (
    controller_ref,
    find_condition,
    is_owned_by,
    owner_reference,
    parse_time,
)

__all__ = ["ReplicaSetController", "owner_key", "pod_is_active", "pod_is_available", "pod_is_ready"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]


def pod_is_active(pod: JSON) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return not pod["metadata"].get("deletionTimestamp") and phase not in ("Succeeded", "Failed")


def pod_is_ready(pod: JSON) -> bool:
    cond = find_condition((pod.get("status") or {}).get("conditions"), "Ready")
    return bool(cond and cond.get("status") == "True")


def pod_is_available(pod: JSON, min_ready_seconds: int, now: dt.datetime) -> bool:
    if not pod_is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    cond = find_condition(pod["status"].get("conditions"), "Ready") or {}
    since = parse_time(cond.get("lastTransitionTime"))
    return since is not None and (now - since).total_seconds() >= min_ready_seconds


def _deletion_rank(pod: JSON) -> tuple[int, int, int]:
    """Pods to remove first: unscheduled, pending, not ready (as the RS controller ranks)."""
    status = pod.get("status") or {}
    scheduled = 1 if (pod.get("spec") or {}).get("nodeName") else 0
    running = 1 if status.get("phase") == "Running" else 0
    ready = 1 if pod_is_ready(pod) else 0
    return (scheduled, running, ready)


def owner_key(obj: JSON, kind: str) -> Key | None:
    ref = controller_ref(obj)
    if ref is None or ref.get("kind") != kind:
        return None
    return obj["metadata"].get("namespace", ""), str(ref.get("name"))


class ReplicaSetController(Controller):
    name = "replicaset-controller"

    def __init__(self, client: KubeClient, rs: Informer, pods: Informer, clock: Clock) -> None:
        super().__init__()
        self.client = client
        self.rs = rs
        self.pods = pods
        self.clock = clock
        self.recorder = EventRecorder(client, "replicaset-controller")
        rs.add_handler(self.enqueue_obj)
        pods.add_handler(self._pod_event)

    def _pod_event(self, _etype: str, pod: JSON) -> None:
        key = owner_key(pod, "ReplicaSet")
        if key:
            self.queue.add(key)

    async def reconcile(self, key: Key) -> float | None:
        rs = self.rs.get(*key)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return None
        ns, uid = key[0], rs["metadata"]["uid"]
        spec = rs.get("spec") or {}
        owned = [p for p in self.pods.items(ns) if is_owned_by(p, uid)]
        active = [p for p in owned if pod_is_active(p)]
        want = int(spec.get("replicas", 1))
        diff = want - len(active)
        if diff > 0:
            for _ in range(diff):
                pod = await self.client.create(PODS, ns, self._pod_from_template(rs))
                self.pods.upsert(pod)
                active.append(pod)
                self.recorder.event(
                    rs, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}"
                )
        elif diff < 0:
            # unscheduled, then pending, then not ready; among equals the newest goes first
            victims = sorted(
                active,
                key=lambda p: (_deletion_rank(p), _neg_time(p)),
            )[:-diff]
            for pod in victims:
                try:
                    obj = await self.client.delete(PODS, ns, pod["metadata"]["name"])
                    if isinstance(obj, dict) and obj.get("kind") == "Pod":
                        self.pods.upsert(obj)
                    else:
                        self.pods.forget(pod)
                except ApiError as exc:
                    if not exc.not_found:
                        raise
                active.remove(pod)
                self.recorder.event(
                    rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}"
                )
        return await self._write_status(rs, active)

    async def _write_status(self, rs: JSON, active: list[JSON]) -> float | None:
        spec = rs.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = dt.datetime.now(dt.UTC)
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        status: JSON = {
            "replicas": len(active),
            "fullyLabeledReplicas": sum(
                1
                for p in active
                if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())
            ),
            "readyReplicas": sum(1 for p in active if pod_is_ready(p)),
            "availableReplicas": sum(1 for p in active if pod_is_available(p, min_ready, now)),
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        old = rs.get("status") or {}
        if any(old.get(k, 0) != v for k, v in status.items()):
            obj = await self.client.patch_status(
                REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"], status
            )
            self.rs.upsert(obj)
        if min_ready and status["readyReplicas"] > status["availableReplicas"]:
            return 1.0
        return None

    def _pod_from_template(self, rs: JSON) -> JSON:
        template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
        tmeta = template.get("metadata") or {}
        meta: JSON = {
            "generateName": f"{rs['metadata']['name']}-",
            "namespace": rs["metadata"]["namespace"],
            "labels": tmeta.get("labels") or {},
            "ownerReferences": [owner_reference(rs)],
        }
        if tmeta.get("annotations"):
            meta["annotations"] = tmeta["annotations"]
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": template.get("spec") or {},
        }


def _neg_time(pod: JSON) -> float:
    t = parse_time(pod["metadata"].get("creationTimestamp"))
    return -(t.timestamp() if t else 0.0)
