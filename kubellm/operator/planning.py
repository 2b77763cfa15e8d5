"""The vocabulary of a plan: what it can ask for, and the scratch state of one pass.

Shared by the planning steps (`plan_training`, `plan_rollout`) and the entry point
(`plan.py`). Everything here is plain data and pure helpers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubellm.api.resource import LLM
from kubellm.api.status import Condition, ConditionStatus, LLMStatus
from kubellm.operator.config import OperatorConfig
from kubellm.operator.observed import Observed

__all__ = [
    "ACTIVE_REQUEUE",
    "RETRY_ANNOTATION",
    "ROLLBACK_ANNOTATION",
    "TOKEN_TAG",
    "VERDICT_TAG",
    "Deletion",
    "Event",
    "F",
    "Plan",
    "RegistryAction",
    "Scale",
    "T",
    "U",
    "Work",
    "condition",
    "seconds_since",
    "stamp",
]

RETRY_ANNOTATION = "kubellm.dev/retry-rollout"
#: `kubellm.dev/rollback-to: "3"` (or "3@anything", to repeat a request): production goes
#: back to version 3, which this operator must have promoted before.
ROLLBACK_ANNOTATION = "kubellm.dev/rollback-to"
VERDICT_TAG = "kubellm.rollout.verdict"
TOKEN_TAG = "kubellm.rollout.retry_token"
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
    type: str  # Normal | Warning
    reason: str
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

    def wait(self, seconds: float = ACTIVE_REQUEUE) -> None:
        self.requeue_after = min(self.requeue_after or seconds, seconds)


def condition(
    type_: str, status: ConditionStatus, reason: str, message: str, generation: int
) -> Condition:
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:1024],
        last_transition_time="",
        observed_generation=generation,
    )


T, F, U = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


def seconds_since(stamp: str | None, now: datetime) -> float:
    if not stamp:
        return float("inf")
    try:
        then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return float("inf")
    return (now - then).total_seconds()


def stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Work:
    """Mutable scratch of one planning pass."""

    llm: LLM
    observed: Observed
    config: OperatorConfig
    now: datetime
    out: Plan
    conditions: list[Condition] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    desired_names: set[tuple[str, str]] = field(default_factory=set)

    def want(self, manifest: dict[str, Any]) -> None:
        self.out.apply.append(manifest)
        self.desired_names.add((manifest["kind"], manifest["metadata"]["name"]))

    def condition(self, type_: str, status: ConditionStatus, reason: str, message: str) -> None:
        self.conditions.append(condition(type_, status, reason, message, self.llm.generation))
