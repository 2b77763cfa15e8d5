"""The entry point: `plan()` runs the planning steps in order and assembles the status.

Steps: training (`training`), which version production is (`trust`, then the
post-promotion watch: `watching`), the candidate's stage (`stages`, `rollout`), the
production release and its scaling (`production`, `scaling`),
retiring what nothing wants (`retiring`), the alias check (`trust`); then conditions are
merged, one Event is posted per condition transition, and the phase and message are
derived.
"""

from __future__ import annotations

from datetime import UTC, datetime

from kubellm.api.conditions import find, merge
from kubellm.api.resource import LLM
from kubellm.api.status import Condition, LLMStatus
from kubellm.api.vocabulary import (
    FAILURE_REASONS,
    WARNING_WHEN_TRUE,
    ConditionType,
    EventType,
    Phase,
    Reason,
    TrainingState,
)
from kubellm.operator.config import OperatorConfig
from kubellm.operator.hardening import disallowed_images
from kubellm.operator.observed import Observed
from kubellm.operator.planning.plans import Event, Plan
from kubellm.operator.planning.production import plan_production
from kubellm.operator.planning.retiring import plan_retirements
from kubellm.operator.planning.rollout import plan_rollout
from kubellm.operator.planning.stages import Rollout
from kubellm.operator.planning.training import plan_training
from kubellm.operator.planning.trust import (
    plan_alias_drift,
    plan_rollback,
    plan_verified_production,
)
from kubellm.operator.planning.watching import plan_watch, start_watch, watch_label
from kubellm.operator.planning.work import F, StatusDraft, T, Work, condition, stamp

__all__ = ["plan", "plan_invalid"]


def _phase(w: Work, training_state: TrainingState | None, rollout: Rollout) -> Phase:
    conds = {c.type: c for c in w.conditions}
    if training_state in (TrainingState.PENDING, TrainingState.RUNNING):
        return Phase.TRAINING
    if rollout.phase is not None:
        return rollout.phase
    if conds[ConditionType.READY].status is T:
        return Phase.READY
    if training_state is TrainingState.FAILED:
        return Phase.FAILED
    if w.status.production is not None:
        return Phase.DEGRADED if (w.llm.status.phase == Phase.READY) else Phase.DEPLOYING
    return Phase.PENDING


def _events_for_conditions(w: Work, merged: list[Condition]) -> None:
    """One Event per condition transition (a change of status or reason)."""
    before = {c.type: c for c in w.llm.status.conditions}
    for cond in merged:
        old = before.get(cond.type)
        warn_true = cond.type in WARNING_WHEN_TRUE and cond.status is T
        if (
            old is not None
            and old.status == cond.status
            and old.reason == cond.reason
            and not (warn_true and old.message != cond.message)
        ):
            continue
        failed = cond.status is F and cond.reason in FAILURE_REASONS
        kind = EventType.WARNING if failed or warn_true else EventType.NORMAL
        w.out.events.append(
            Event(kind, cond.reason, f"{cond.type}={cond.status.value}: {cond.message}")
        )


def plan(
    llm: LLM,
    observed: Observed,
    config: OperatorConfig,
    now: datetime | None = None,
) -> Plan:
    """Everything to do for ``llm`` given ``observed``; pure and deterministic."""
    refused = disallowed_images(llm, config)
    if refused:  # like an invalid spec for this operator: record why, touch nothing
        return plan_invalid(llm.status, llm.generation, refused, Reason.IMAGE_NOT_ALLOWED)
    now = now or datetime.now(UTC)
    w = Work(
        llm=llm,
        observed=observed,
        config=config,
        now=now,
        out=Plan(),
        status=StatusDraft.carried_from(llm.status),
    )
    w.condition(ConditionType.SPEC_VALID, T, Reason.VALID, "the spec passed validation")
    reg = observed.registry
    if not reg.reachable:
        # Without the registry nothing can be decided about releases: leave children alone.
        status = llm.status.model_copy(deep=True)
        status.message = f"registry unreachable: {reg.error}"
        status.observed_generation = llm.generation
        w.out.status = status
        w.out.requeue_after = 10.0
        return w.out
    training_state = plan_training(w)
    watch = plan_watch(w, plan_rollback(w, plan_verified_production(w)))
    rollout = plan_rollout(w, watch.production_after)
    watched = start_watch(w, rollout, watch)
    plan_production(w, rollout, watched)
    plan_retirements(w, rollout.production_after)
    plan_alias_drift(w, rollout.production_after)

    merged = merge(llm.status.conditions, w.conditions, now=stamp(now))
    _events_for_conditions(w, merged)
    phase = _phase(w, training_state, rollout)
    status = LLMStatus(
        phase=phase,
        stage=rollout.stage_label or watch_label(w, watched),
        observed_generation=llm.generation,
        conditions=merged,
        training=w.status.training,
        candidate=w.status.candidate,
        production=w.status.production,
        serving=w.status.serving,
        last_p95_ms=w.status.last_p95_ms,
        refused_versions=w.status.refused_versions,
        promoted_versions=w.status.promoted_versions,
        withdrawn_versions=w.status.withdrawn_versions,
        rollback=w.status.rollback,
        history=w.status.history,
        message=_message(w, phase),
    )
    w.out.status = status
    return w.out


def _message(w: Work, phase: Phase) -> str:
    conds = {c.type: c for c in w.conditions}
    for type_ in (
        ConditionType.TRAINED,
        ConditionType.LOAD_TEST_PASSED,
        ConditionType.CANDIDATE_READY,
        ConditionType.READY,
    ):
        cond = conds.get(type_)
        if (
            cond is not None
            and cond.status is not T
            and cond.reason not in (Reason.NO_CANDIDATE, Reason.CANDIDATE_REFUSED)
        ):
            return cond.message
    return conds[ConditionType.READY].message


def plan_invalid(
    llm_status: LLMStatus, generation: int, errors: list[str], reason: str = Reason.INVALID_SPEC
) -> Plan:
    """The plan for a spec that can never work: record why, touch nothing else.

    ``reason`` is a `Reason` (a str, so that callers may pass their own constant)."""
    message = "; ".join(errors)[:1024]
    cond = condition(ConditionType.SPEC_VALID, F, reason, message, generation)
    ready = condition(ConditionType.READY, F, reason, "the spec is invalid", generation)
    merged = merge(llm_status.conditions, [cond, ready])
    status = llm_status.model_copy(
        update={
            "conditions": merged,
            "phase": Phase.INVALID,
            "observed_generation": generation,
            "message": message,
        }
    )
    events = []
    old = find(llm_status.conditions, ConditionType.SPEC_VALID)
    if old is None or old.status is not F or old.message != message:
        events.append(Event(EventType.WARNING, reason, message))
    return Plan(status=status, events=events)
