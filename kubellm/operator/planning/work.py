"""The scratch state of one planning pass: the LLM, what was observed, the plan being
built, the conditions and the status draft; and the annotations and tags the steps share.

Everything here is plain data and pure helpers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubellm.api.resource import LLM
from kubellm.api.status import (
    PROMOTED_LIMIT,
    CandidateStatus,
    Condition,
    LLMStatus,
    ProductionStatus,
    Release,
    RollbackStatus,
    ServingStatus,
    TrainingStatus,
)
from kubellm.api.timestamps import format_time
from kubellm.api.timestamps import seconds_since as seconds_since
from kubellm.api.vocabulary import (
    ConditionStatus,
    ConditionType,
    EventReason,
    EventType,
    Reason,
    ReleaseVerdict,
)
from kubellm.operator.config import OperatorConfig
from kubellm.operator.observed import Observed
from kubellm.operator.planning.plans import Event, Plan

__all__ = [
    "RETRY_ANNOTATION",
    "ROLLBACK_ANNOTATION",
    "TOKEN_TAG",
    "VERDICT_TAG",
    "F",
    "StatusDraft",
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


def condition(
    type_: ConditionType, status: ConditionStatus, reason: str, message: str, generation: int
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


def stamp(now: datetime) -> str:
    return format_time(now)


def recorded_promotions(status: LLMStatus) -> list[str]:
    """Versions this operator promoted, oldest first, as its status records them (the
    ``promoted`` releases of ``history`` and ``promotedVersions``)."""
    older = [r.version for r in reversed(status.history) if r.verdict is ReleaseVerdict.PROMOTED]
    out: list[str] = []
    for version in [*older, *status.promoted_versions]:
        if version in out:
            out.remove(version)
        out.append(version)
    return out[-PROMOTED_LIMIT:]


@dataclass
class StatusDraft:
    """The parts of the next status that the planning steps compute. The lists, the latest
    p95, the rollback and the history carry over from the previous status unless a step
    changes them; the sections of the children start empty and are filled by their step."""

    training: TrainingStatus | None = None
    candidate: CandidateStatus | None = None
    production: ProductionStatus | None = None
    serving: ServingStatus | None = None
    last_p95_ms: float | None = None
    refused_versions: list[str] = field(default_factory=list)
    promoted_versions: list[str] = field(default_factory=list)
    withdrawn_versions: list[str] = field(default_factory=list)
    rollback: RollbackStatus | None = None
    history: list[Release] = field(default_factory=list)

    @classmethod
    def carried_from(cls, previous: LLMStatus) -> StatusDraft:
        return cls(
            last_p95_ms=previous.last_p95_ms,
            refused_versions=list(previous.refused_versions),
            promoted_versions=recorded_promotions(previous),
            withdrawn_versions=list(previous.withdrawn_versions),
            rollback=previous.rollback,
            history=list(previous.history),
        )


@dataclass
class Work:
    """Mutable scratch of one planning pass."""

    llm: LLM
    observed: Observed
    config: OperatorConfig
    now: datetime
    out: Plan
    conditions: list[Condition] = field(default_factory=list)
    status: StatusDraft = field(default_factory=StatusDraft)
    #: (kind, name) of every child this pass wants, applied or kept as it is
    desired: set[tuple[str, str]] = field(default_factory=set)

    def want(self, manifest: dict[str, Any]) -> None:
        """Create ``manifest``, or patch it where its rendered spec drifted."""
        self.out.apply.append(manifest)
        self.desired.add((manifest["kind"], manifest["metadata"]["name"]))

    def keep(self, kind: str, name: str) -> None:
        """An existing child stays as it is: neither written nor retired."""
        self.desired.add((kind, name))

    def service_url(self, name: str) -> str | None:
        """The URL of an observed Service by its cluster IP (None until it has one)."""
        svc = self.observed.services.get(name)
        if svc is None or not svc.cluster_ip or svc.cluster_ip == "None":
            return None
        return f"http://{svc.cluster_ip}:{self.config.serving_port}"

    def condition(
        self, type_: ConditionType, status: ConditionStatus, reason: Reason, message: str
    ) -> None:
        self.conditions.append(condition(type_, status, reason, message, self.llm.generation))

    def event(self, type_: EventType, reason: EventReason, message: str) -> None:
        self.out.events.append(Event(type_, reason, message))
