"""What a plan asks for: registry actions, children to apply, scale or delete, Events, the
next status, and when to look again. Plain data: `executing.execute` carries it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubellm.api.status import LLMStatus
from kubellm.api.vocabulary import EventType, ReleaseVerdict, RollbackTrigger

__all__ = ["ACTIVE_REQUEUE", "Deletion", "Event", "Plan", "RegistryAction", "Scale"]

#: how soon to look again while something is under way (a Job runs, a pod starts)
ACTIVE_REQUEUE = 2.0


@dataclass(frozen=True)
class RegistryAction:
    """set_alias(alias -> version) or set_tags(version, tags) on the LLM's registered model."""

    kind: str  # "set_alias" | "set_tags"
    version: str
    alias: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Scale:
    """Set a Deployment's replicas: only to and from zero, where no HPA can act."""

    deployment: str
    replicas: int


@dataclass(frozen=True)
class Deletion:
    kind: str  # "Job" | "Deployment" | "Service" | "HorizontalPodAutoscaler" | "ConfigMap"
    name: str


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: str  # an EventReason, or a condition's Reason on its transition
    message: str


@dataclass
class Plan:
    registry: list[RegistryAction] = field(default_factory=list)
    apply: list[dict[str, Any]] = field(default_factory=list)
    delete: list[Deletion] = field(default_factory=list)
    scale: list[Scale] = field(default_factory=list)
    status: LLMStatus = field(default_factory=LLMStatus)
    events: list[Event] = field(default_factory=list)
    #: seconds until the next reconcile is useful; None: steady, poll at the normal interval
    requeue_after: float | None = None
    #: the gate's decision on the candidate in this pass (promoted or refused), if any;
    #: the metrics count it, once per decision (Events and conditions may repeat a reason)
    verdict: ReleaseVerdict | None = None
    #: what rolled production back in this pass, if anything (counted by the metrics)
    rollback: RollbackTrigger | None = None

    def wait(self, seconds: float = ACTIVE_REQUEUE) -> None:
        self.requeue_after = min(self.requeue_after or seconds, seconds)
