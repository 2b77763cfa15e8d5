"""Pods that stay not Ready: which ones, why, and what they last logged.

`kubellm demo` waits for a promotion that depends on several pods (the operator, then the
training, serving and load-test pods it creates). When one of them cannot start (its port
is taken, its image command fails), waiting out the whole timeout and then printing an
empty status tells the user nothing. Instead the demo looks at the pods while it waits: a
pod that is still not Ready after a bound (60 s) is reported with its name, the reason its
containers give (`CrashLoopBackOff`, the last exit and its message) and its last log lines,
and the demo ends there. The selection and the reason are pure functions of the pod list,
so they are tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubellm.api.timestamps import parse_time

__all__ = ["NOT_READY_BOUND", "StuckPod", "pod_reason", "stuck_pods"]

JSON = Mapping[str, Any]
NOT_READY_BOUND = 60.0


@dataclass(frozen=True)
class StuckPod:
    """A pod that has not been Ready for `seconds`, and the reason its status gives."""

    namespace: str
    name: str
    seconds: float
    reason: str
    restarts: int

    def sentence(self) -> str:
        return (
            f"pod {self.namespace}/{self.name} is not Ready after {self.seconds:.0f}s "
            f"({self.reason})"
        )


def _timestamp(text: Any) -> float | None:
    moment = parse_time(text)
    return None if moment is None else moment.timestamp()


def _not_ready_since(pod: JSON) -> float | None:
    """When the pod last stopped being Ready (its creation if it never was); None if Ready."""
    status = pod.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            if cond.get("status") == "True":
                return None
            since = _timestamp(cond.get("lastTransitionTime"))
            if since is not None:
                return since
    return _timestamp((pod.get("metadata") or {}).get("creationTimestamp"))


def _last_line(text: Any, limit: int = 160) -> str:
    lines = [line.strip() for line in str(text or "").strip().splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1]  # a traceback's last line says what went wrong
    return last if len(last) <= limit else last[: limit - 3] + "..."


def pod_reason(pod: JSON) -> str:
    """What the pod's containers say: the waiting reason, then the last termination."""
    status = pod.get("status") or {}
    containers = [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]
    for cs in containers:
        state, last = cs.get("state") or {}, cs.get("lastState") or {}
        waiting = state.get("waiting") or {}
        terminated = state.get("terminated") or last.get("terminated") or {}
        bits = []
        if waiting.get("reason") and waiting["reason"] != "PodInitializing":
            bits.append(str(waiting["reason"]))
        if terminated and (terminated.get("exitCode") or 0) != 0:
            code = (
                f"last exit: {terminated.get('reason') or 'Error'}, code {terminated['exitCode']}"
            )
            message = _last_line(terminated.get("message"))
            bits.append(f"{code}: {message}" if message else code)
        if bits:
            return f"container {cs.get('name')}: " + "; ".join(bits)
    for cs in containers:
        if "running" in (cs.get("state") or {}) and not cs.get("ready"):
            return f"container {cs.get('name')} is running but not Ready"
    return str(status.get("reason") or status.get("phase") or "Pending")


def stuck_pods(pods: Iterable[JSON], now: float, bound: float = NOT_READY_BOUND) -> list[StuckPod]:
    """Pods that are Pending or Running, not being deleted, and not Ready for over `bound`.

    Finished pods (Succeeded, Failed) are the owners' business (a Job counts them), not a
    sign that something cannot start.
    """
    out = []
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        if meta.get("deletionTimestamp") or status.get("phase") in ("Succeeded", "Failed"):
            continue
        since = _not_ready_since(pod)
        if since is None or now - since <= bound:
            continue
        restarts = sum(
            int(cs.get("restartCount") or 0) for cs in status.get("containerStatuses") or []
        )
        out.append(
            StuckPod(
                namespace=str(meta.get("namespace") or ""),
                name=str(meta.get("name") or ""),
                seconds=now - since,
                reason=pod_reason(pod),
                restarts=restarts,
            )
        )
    return sorted(out, key=lambda s: -s.seconds)
