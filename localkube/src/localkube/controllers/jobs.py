"""The Job controller: runs pods to completion as :func:`jobstatus.decide` says.

Pods are `<job>-<5 chars>` (`<job>-<index>-<5 chars>` in Indexed mode, which also sets the
completion-index annotation and label, the pod hostname `<job>-<index>` and the
`JOB_COMPLETION_INDEX` env from the annotation, as the real controller does). Events come
from `job-controller`.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from typing import Any

from localkube.client import JOBS, PODS, ApiError, KubeClient
from localkube.controllers.base import Clock, Controller, EventRecorder, Informer, Key
from localkube.controllers.jobstatus import INDEX_KEY, decide
from localkube.controllers.meta import controller_ref, is_owned_by, owner_reference

__all__ = ["JobController", "job_pod"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]


def job_pod(job: JSON, index: int | None) -> JSON:
    """The pod a Job creates (for `index` in Indexed mode)."""
    template = copy.deepcopy((job.get("spec") or {}).get("template") or {})
    tmeta = template.get("metadata") or {}
    spec = template.get("spec") or {}
    name = job["metadata"]["name"]
    labels = dict(tmeta.get("labels") or {})
    annotations = dict(tmeta.get("annotations") or {})
    prefix = f"{name}-"
    if index is not None:
        prefix = f"{name}-{index}-"
        annotations[INDEX_KEY] = str(index)
        labels[INDEX_KEY] = str(index)
        spec.setdefault("hostname", f"{name}-{index}")
        ref = {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_KEY}']"}}
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            env = [e for e in c.get("env") or [] if e.get("name") != "JOB_COMPLETION_INDEX"]
            c["env"] = [{"name": "JOB_COMPLETION_INDEX", "valueFrom": ref}, *env]
    meta: JSON = {
        "generateName": prefix,
        "namespace": job["metadata"]["namespace"],
        "labels": labels,
        "ownerReferences": [owner_reference(job)],
    }
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


class JobController(Controller):
    name = "job-controller"

    def __init__(self, client: KubeClient, jobs: Informer, pods: Informer, clock: Clock) -> None:
        super().__init__()
        self.client = client
        self.jobs = jobs
        self.pods = pods
        self.clock = clock
        self.recorder = EventRecorder(client, "job-controller")
        jobs.add_handler(self.enqueue_obj)
        pods.add_handler(self._pod_event)

    def _pod_event(self, _etype: str, pod: JSON) -> None:
        ref = controller_ref(pod)
        if ref and ref.get("kind") == "Job":
            self.queue.add((pod["metadata"].get("namespace", ""), str(ref.get("name"))))

    async def reconcile(self, key: Key) -> float | None:
        job = self.jobs.get(*key)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return None
        ns = key[0]
        pods = [p for p in self.pods.items(ns) if is_owned_by(p, job["metadata"]["uid"])]
        d = decide(job, pods, dt.datetime.now(dt.UTC), self.clock.scale)
        for index in d.create:
            pod = await self.client.create(PODS, ns, job_pod(job, index))
            self.pods.upsert(pod)
            self.recorder.event(
                job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}"
            )
        for name in d.delete:
            try:
                obj = await self.client.delete(PODS, ns, name)
                if isinstance(obj, dict) and obj.get("kind") == "Pod":
                    self.pods.upsert(obj)
                self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
            except ApiError as exc:
                if not exc.not_found:
                    raise
        for etype, reason, message in d.events:
            self.recorder.event(job, etype, reason, message)
        old_status = job.get("status") or {}
        if d.status != old_status:
            # a merge patch: fields the decision left out (a count back to 0) are nulled
            gone = {k: None for k in old_status if k not in d.status}
            obj = await self.client.patch_status(JOBS, ns, key[1], {**gone, **d.status})
            self.jobs.upsert(obj)
        if d.delete_job:
            try:
                await self.client.delete(JOBS, ns, key[1], propagation_policy="Background")
            except ApiError as exc:
                if not exc.not_found:
                    raise
            return None
        return d.requeue
