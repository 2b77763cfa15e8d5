"""What a Pod's status says, computed from the kubelet's view of its containers (pure).

The kubelet keeps one :class:`ContainerRecord` per container; these functions turn the
records into `status.containerStatuses`, the phase and the conditions exactly as the real
kubelet reports them, so `kubectl get pods`, `rollout status` and the Job controller read
the same fields they read on a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ContainerRecord",
    "crashloop_delay",
    "exit_code_of",
    "pod_conditions",
    "pod_phase",
    "termination_message",
]

JSON = dict[str, Any]
MAX_MESSAGE_BYTES = 4096
FALLBACK_LOG_LINES = 80
FALLBACK_LOG_BYTES = 2048


@dataclass
class ContainerRecord:
    """The kubelet's state of one container (init or regular)."""

    name: str
    image: str = ""
    init: bool = False
    state: JSON = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: JSON = field(default_factory=dict)
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    container_id: str = ""

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def terminated(self) -> JSON | None:
        t = self.state.get("terminated")
        return t if isinstance(t, dict) else None

    def to_status(self) -> JSON:
        out: JSON = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": self.started,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out


def exit_code_of(returncode: int) -> int:
    """A process killed by signal N reports 128+N, as a container runtime does."""
    return 128 - returncode if returncode < 0 else returncode


def crashloop_delay(restarts: int, *, base: float = 10.0, cap: float = 300.0) -> float:
    """CrashLoopBackOff: 10 s doubling per restart, capped at 5 min."""
    return float(min(cap, base * (2 ** max(0, restarts))))


def termination_message(file_text: bytes, log_tail: bytes, exit_code: int, policy: str) -> str:
    """`state.terminated.message`: the termination file, else (FallbackToLogsOnError and a
    failure) the log tail, at most 4096 bytes (the tail fallback at most 80 lines/2 KiB)."""
    data = file_text[:MAX_MESSAGE_BYTES]
    if not data.strip() and policy == "FallbackToLogsOnError" and exit_code != 0:
        lines = log_tail.splitlines(keepends=True)[-FALLBACK_LOG_LINES:]
        data = b"".join(lines)[-FALLBACK_LOG_BYTES:]
    return data.decode("utf-8", errors="replace")


def pod_phase(containers: list[ContainerRecord], restart_policy: str, init_failed: bool) -> str:
    """Pending until a container started; Succeeded/Failed once none will run again."""
    if init_failed:
        return "Failed"
    if not containers:
        return "Pending"
    if any(c.running for c in containers):
        return "Running"
    terminated = [c.terminated for c in containers]
    if all(t is not None for t in terminated):
        codes = [int(t.get("exitCode", 1)) for t in terminated if t is not None]
        if restart_policy == "Always":
            return "Running"
        if all(code == 0 for code in codes):
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"  # OnFailure: the failed ones are restarting
    if any(c.restart_count > 0 or c.last_state for c in containers):
        return "Running"  # waiting in CrashLoopBackOff between runs
    return "Pending"


def pod_conditions(
    previous: list[JSON] | None,
    *,
    now: str,
    initialized: bool,
    containers_ready: bool,
    init_incomplete: list[str] | None = None,
    not_ready_names: list[str] | None = None,
    phase: str = "Running",
) -> list[JSON]:
    """PodScheduled, Initialized, ContainersReady and Ready with stable transition times."""
    prev = {c.get("type"): c for c in previous or []}

    def cond(ctype: str, ok: bool, reason: str = "", message: str = "") -> JSON:
        status = "True" if ok else "False"
        old = prev.get(ctype)
        ltt = old.get("lastTransitionTime") if old and old.get("status") == status else now
        out: JSON = {
            "type": ctype,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": ltt,
        }
        if not ok:
            out["reason"] = reason
            if message:
                out["message"] = message
        return out

    names = ", ".join(not_ready_names or [])
    completed = phase in ("Succeeded", "Failed")
    ready_reason = "PodCompleted" if completed else "ContainersNotReady"
    ready_msg = "" if completed else f"containers with unready status: [{names}]"
    return [
        cond("PodReadyToStartContainers", True),
        cond(
            "Initialized",
            initialized,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{', '.join(init_incomplete or [])}]",
        ),
        cond("Ready", containers_ready, ready_reason, ready_msg),
        cond("ContainersReady", containers_ready, ready_reason, ready_msg),
        cond("PodScheduled", True),
    ]
