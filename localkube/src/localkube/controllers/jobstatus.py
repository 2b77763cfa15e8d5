"""What the Job controller decides on each sync (pure).

Given a Job and its pods, :func:`decide` says which pods to create (and with which
completion index), which to delete, and what the status becomes, following
kube-controller-manager's job controller: parallelism and completions, Indexed mode,
backoffLimit (failed pods, or container restarts with `OnFailure`), activeDeadlineSeconds,
exponential retry delay (10 s doubling, capped at 6 min), suspend, and the
SuccessCriteriaMet/Complete and FailureTarget/Failed conditions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from localkube.controllers.meta import find_condition, format_time, parse_time

__all__ = ["INDEX_KEY", "JobDecision", "decide", "format_indexes", "pod_index", "retry_delay"]

JSON = dict[str, Any]
INDEX_KEY = "batch.kubernetes.io/job-completion-index"


def retry_delay(failures: int, *, base: float = 10.0, cap: float = 360.0) -> float:
    """Delay before re-creating a pod after the n-th failure: 10 s * 2^(n-1), max 6 min."""
    if failures <= 0:
        return 0.0
    return float(min(cap, base * 2 ** (failures - 1)))


def pod_index(pod: JSON) -> int | None:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(INDEX_KEY)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def format_indexes(indexes: set[int]) -> str:
    """`0-2,4` as in status.completedIndexes."""
    out: list[str] = []
    ordered = sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


@dataclass
class JobDecision:
    create: list[int | None] = field(default_factory=list)  # completion index or None
    delete: list[str] = field(default_factory=list)  # pod names
    status: JSON = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # type, reason, message
    requeue: float | None = None
    delete_job: bool = False


def _phase(pod: JSON) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def _ready(pod: JSON) -> bool:
    c = find_condition((pod.get("status") or {}).get("conditions"), "Ready")
    return bool(c and c.get("status") == "True")


def _finished_at(pod: JSON) -> dt.datetime | None:
    latest: dt.datetime | None = None
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        t = parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        if t and (latest is None or t > latest):
            latest = t
    return latest


def _cond_true(status: JSON, ctype: str) -> JSON | None:
    c = find_condition(status.get("conditions"), ctype)
    return c if c and c.get("status") == "True" else None


def _add(conds: list[JSON], ctype: str, reason: str, message: str, now: str) -> list[JSON]:
    out = [c for c in conds if c.get("type") != ctype]
    out.append(
        {
            "type": ctype,
            "status": "True",
            "reason": reason,
            "message": message,
            "lastProbeTime": now,
            "lastTransitionTime": now,
        }
    )
    return out


def _omit_zero_counts(status: JSON) -> JSON:
    """JobStatus's `active`, `succeeded` and `failed` are omitempty: a zero is left out."""
    return {k: v for k, v in status.items() if not (k in _OMITEMPTY and v == 0)}


_OMITEMPTY = ("active", "succeeded", "failed")


def decide(job: JSON, pods: list[JSON], now: dt.datetime, scale: float = 1.0) -> JobDecision:
    spec, old = job.get("spec") or {}, dict(job.get("status") or {})
    d = JobDecision()
    now_s = format_time(now)
    indexed = spec.get("completionMode") == "Indexed"
    completions = spec.get("completions")
    parallelism = int(spec.get("parallelism", 1) if spec.get("parallelism") is not None else 1)
    backoff_limit = int(spec.get("backoffLimit", 6) if spec.get("backoffLimit") is not None else 6)
    policy = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy", "Never")

    terminating = [p for p in pods if (p.get("metadata") or {}).get("deletionTimestamp")]
    live = [p for p in pods if p not in terminating]
    active = [p for p in live if _phase(p) not in ("Succeeded", "Failed")]
    succeeded_pods = [p for p in live if _phase(p) == "Succeeded"]
    failed_pods = [p for p in pods if _phase(p) == "Failed"]
    done_indexes = {i for p in succeeded_pods if (i := pod_index(p)) is not None}
    succeeded = max(
        int(old.get("succeeded", 0)), len(done_indexes) if indexed else len(succeeded_pods)
    )
    failed = max(int(old.get("failed", 0)), len(failed_pods))
    restarts = sum(
        int(cs.get("restartCount", 0))
        for p in pods
        for cs in (p.get("status") or {}).get("containerStatuses") or []
    )
    conds: list[JSON] = list(old.get("conditions") or [])
    status: JSON = dict(old)
    finished = _cond_true(old, "Complete") or _cond_true(old, "Failed")

    def finish_ttl(at: dt.datetime) -> None:
        ttl = spec.get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        left = at.timestamp() + float(ttl) * scale - now.timestamp()
        if left <= 0:
            d.delete_job = True
        else:
            d.requeue = left

    if finished:
        if _cond_true(old, "Failed"):
            d.delete = [p["metadata"]["name"] for p in active]
        at = parse_time(old.get("completionTime") or finished.get("lastTransitionTime")) or now
        finish_ttl(at)
        status.update(
            active=0 if _cond_true(old, "Failed") else len(active), terminating=len(terminating)
        )
        d.status = _omit_zero_counts(status)
        return d

    if spec.get("suspend"):
        d.delete = [p["metadata"]["name"] for p in active]
        if not _cond_true(old, "Suspended"):
            conds = _add(conds, "Suspended", "JobSuspended", "Job suspended", now_s)
            d.events.append(("Normal", "Suspended", "Job suspended"))
        status.update(
            active=0, ready=0, conditions=conds, terminating=len(terminating) + len(active)
        )
        status.pop("startTime", None)
        d.status = _omit_zero_counts(status)
        return d
    if _cond_true(old, "Suspended"):
        conds = [
            dict(
                c,
                status="False",
                reason="JobResumed",
                message="Job resumed",
                lastTransitionTime=now_s,
            )
            if c.get("type") == "Suspended"
            else c
            for c in conds
        ]
        d.events.append(("Normal", "Resumed", "Job resumed"))

    start = parse_time(old.get("startTime")) or now
    status["startTime"] = format_time(start)

    # success
    if indexed and completions is not None:
        complete = len(done_indexes) >= int(completions)
    elif completions is not None:
        complete = succeeded >= int(completions)
    else:
        complete = succeeded > 0 and not active
    fail_reason = ""
    fail_message = ""
    deadline = spec.get("activeDeadlineSeconds")
    if not complete:
        if failed > backoff_limit or (
            policy == "OnFailure" and backoff_limit >= 0 and restarts > backoff_limit
        ):
            fail_reason, fail_message = (
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            )
        elif deadline is not None and (now - start).total_seconds() >= float(deadline) * scale:
            fail_reason, fail_message = (
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            )
    if complete:
        conds = _add(
            conds,
            "SuccessCriteriaMet",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
            now_s,
        )
        conds = _add(
            conds,
            "Complete",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
            now_s,
        )
        status["completionTime"] = now_s
        d.events.append(("Normal", "Completed", "Job completed"))
        d.delete = [p["metadata"]["name"] for p in active]  # e.g. NonIndexed with nil completions
        finish_ttl(now)
    elif fail_reason:
        conds = _add(conds, "FailureTarget", fail_reason, fail_message, now_s)
        conds = _add(conds, "Failed", fail_reason, fail_message, now_s)
        d.events.append(("Warning", fail_reason, fail_message))
        d.delete = [p["metadata"]["name"] for p in active]
        finish_ttl(now)
    else:
        # how many more pods, and which indexes
        if indexed:
            total = int(completions or 1)
            active_idx = {pod_index(p) for p in active}
            pending = [i for i in range(total) if i not in done_indexes and i not in active_idx]
            room = max(0, parallelism - len(active))
            wanted: list[int | None] = list(pending[:room])
        else:
            if completions is not None:
                want_active = min(parallelism, int(completions) - succeeded)
            else:
                want_active = 0 if succeeded > 0 else parallelism
            want_active = max(0, want_active)
            if len(active) > want_active:
                extra = sorted(
                    active, key=lambda p: str(p["metadata"].get("creationTimestamp")), reverse=True
                )
                d.delete = [p["metadata"]["name"] for p in extra[: len(active) - want_active]]
            wanted = [None] * max(0, want_active - len(active))
        if wanted and failed_pods:
            last = max((t for p in failed_pods if (t := _finished_at(p))), default=None)
            delay = retry_delay(len(failed_pods)) * scale
            if last is not None:
                left = last.timestamp() + delay - now.timestamp()
                if left > 0:
                    wanted = []
                    d.requeue = left
        d.create = wanted
        if deadline is not None:
            left = start.timestamp() + float(deadline) * scale - now.timestamp()
            d.requeue = min(left, d.requeue) if d.requeue is not None else left
    n_active = 0 if (complete or fail_reason) else len(active) + len(d.create) - len(d.delete)
    status.update(
        active=n_active,
        ready=0 if (complete or fail_reason) else sum(1 for p in active if _ready(p)),
        succeeded=succeeded,
        failed=failed,
        terminating=len(terminating),
        uncountedTerminatedPods={},
        conditions=conds,
    )
    if indexed:
        status["completedIndexes"] = format_indexes(done_indexes)
    d.status = _omit_zero_counts(status)
    return d
