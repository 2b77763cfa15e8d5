"""The decision: from an LLM and the observed world to desired children and next status.

`plan()` is a pure function. Everything the operator does (train, deploy a candidate,
load-test it, promote or refuse it, retire the old release) is decided here, from the
current observation only, so that an operator restarted at any moment recomputes the same
plan and converges without duplicating anything. Production is the last version the
operator verified itself (`plan_trust`): its status records each promotion, and the
registry alias it moves is a copy for consumers of the registry, not an order to follow.
"""

from __future__ import annotations

from datetime import UTC, datetime

from kubellm.api.conditions import find, merge
from kubellm.api.resource import LLM
from kubellm.api.status import Condition, LLMStatus, Phase
from kubellm.operator.config import OperatorConfig
from kubellm.operator.hardening import disallowed_images
from kubellm.operator.observed import Observed
from kubellm.operator.plan_rollout import plan_candidate, plan_deletions, plan_production
from kubellm.operator.plan_training import plan_training
from kubellm.operator.plan_trust import (
    plan_alias_drift,
    plan_rollback,
    plan_verified_production,
)
from kubellm.operator.planning import (
    RETRY_ANNOTATION,
    VERDICT_TAG,
    Deletion,
    Event,
    F,
    Plan,
    RegistryAction,
    T,
    Work,
    condition,
    stamp,
)
from kubellm.operator.verdicts import parse_loadtest_message, parse_training_message

__all__ = [
    "RETRY_ANNOTATION",
    "VERDICT_TAG",
    "Deletion",
    "Event",
    "Plan",
    "RegistryAction",
    "parse_loadtest_message",
    "parse_training_message",
    "plan",
    "plan_invalid",
]


def _phase(w: Work, training_state: str, promoted: str | None) -> Phase:
    conds = {c.type: c for c in w.conditions}
    cand = w.status.get("candidate")
    if training_state in ("Pending", "Running"):
        return Phase.TRAINING
    if promoted is not None:
        return Phase.PROMOTING
    if cand is not None and cand.state in ("Starting",):
        return Phase.DEPLOYING
    if cand is not None and cand.state == "LoadTesting":
        return Phase.LOAD_TESTING
    if conds["Ready"].status is T:
        return Phase.READY
    if training_state == "Failed":
        return Phase.FAILED
    if w.status.get("production") is not None:
        return Phase.DEGRADED if (w.llm.status.phase == Phase.READY) else Phase.DEPLOYING
    return Phase.PENDING


_FAILURE_REASONS = frozenset(
    {"TrainingFailed", "LoadTestFailed", "CandidateRefused", "InvalidSpec", "ProductionStarting"}
)


#: conditions that report a problem when True; a change of their message is news too
_WARNING_WHEN_TRUE = frozenset({"ProductionAliasDrift"})


def _events_for_conditions(w: Work, merged: list[Condition]) -> None:
    """One Event per condition transition (a change of status or reason)."""
    before = {c.type: c for c in w.llm.status.conditions}
    for cond in merged:
        old = before.get(cond.type)
        warn_true = cond.type in _WARNING_WHEN_TRUE and cond.status is T
        if (
            old is not None
            and old.status == cond.status
            and old.reason == cond.reason
            and not (warn_true and old.message != cond.message)
        ):
            continue
        failed = cond.status is F and cond.reason in _FAILURE_REASONS
        kind = "Warning" if failed or warn_true else "Normal"
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
        return plan_invalid(llm.status, llm.generation, refused, reason="ImageNotAllowed")
    now = now or datetime.now(UTC)
    w = Work(llm=llm, observed=observed, config=config, now=now, out=Plan())
    w.condition("SpecValid", T, "Valid", "the spec passed validation")
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
    production = plan_rollback(w, plan_verified_production(w))
    promoted = plan_candidate(w, production)
    if promoted is not None:
        production = promoted
    plan_production(w, production, promoted is not None)
    plan_deletions(w, production)
    plan_alias_drift(w, production)

    merged = merge(llm.status.conditions, w.conditions, now=stamp(now))
    _events_for_conditions(w, merged)
    phase = _phase(w, training_state, promoted)
    status = LLMStatus(
        phase=phase,
        observed_generation=llm.generation,
        conditions=merged,
        training=w.status.get("training"),
        candidate=w.status.get("candidate"),
        production=w.status.get("production"),
        serving=w.status.get("serving"),
        last_p95_ms=w.status.get("last_p95_ms", llm.status.last_p95_ms),
        refused_versions=w.status.get("refused_versions", list(llm.status.refused_versions)),
        promoted_versions=w.status.get("promoted_versions", list(llm.status.promoted_versions)),
        withdrawn_versions=w.status.get("withdrawn_versions", list(llm.status.withdrawn_versions)),
        rollback=w.status.get("rollback", llm.status.rollback),
        history=w.status.get("history", list(llm.status.history)),
        message=_message(w, phase),
    )
    w.out.status = status
    if promoted is not None:
        w.out.wait(0.5)
    return w.out


def _message(w: Work, phase: Phase) -> str:
    conds = {c.type: c for c in w.conditions}
    for type_ in ("Trained", "LoadTestPassed", "CandidateReady", "Ready"):
        cond = conds.get(type_)
        if (
            cond is not None
            and cond.status is not T
            and cond.reason not in ("NoCandidate", "CandidateRefused")
        ):
            return cond.message
    return conds["Ready"].message


def plan_invalid(
    llm_status: LLMStatus, generation: int, errors: list[str], reason: str = "InvalidSpec"
) -> Plan:
    """The plan for a spec that can never work: record why, touch nothing else."""
    message = "; ".join(errors)[:1024]
    cond = condition("SpecValid", F, reason, message, generation)
    ready = condition("Ready", F, reason, "the spec is invalid", generation)
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
    old = find(llm_status.conditions, "SpecValid")
    if old is None or old.status is not F or old.message != message:
        events.append(Event("Warning", reason, message))
    return Plan(status=status, events=events)
