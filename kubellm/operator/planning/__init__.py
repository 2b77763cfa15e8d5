"""The decision: from an LLM and the observed world to desired children and next status.

`plan()` is a pure function. Everything the operator does (train, deploy a candidate,
load-test it, promote or refuse it, retire the old release) is decided here, from the
current observation only, so that an operator restarted at any moment recomputes the same
plan and converges without duplicating anything. Production is the last version the
operator verified itself (`trust`): its status records each promotion, and the registry
alias it moves is a copy for consumers of the registry, not an order to follow.

Modules: `plans` (what a plan can ask for), `work` (the scratch of one pass and the status
draft), `deciding` (`plan()`, the entry point), and one module per step, in the order
`plan()` runs them: `training`, `trust` (which version production is), `rollout` (the
candidate: `stages` reads its stage once, `rollout` has one function per stage),
`production` (with `scaling`), `retiring` (what no step wants), `trust` (alias drift).
"""

from kubellm.operator.planning.deciding import plan, plan_invalid
from kubellm.operator.planning.plans import (
    ACTIVE_REQUEUE,
    Deletion,
    Event,
    Plan,
    RegistryAction,
    Scale,
)
from kubellm.operator.planning.work import (
    RETRY_ANNOTATION,
    ROLLBACK_ANNOTATION,
    TOKEN_TAG,
    VERDICT_TAG,
)

__all__ = [
    "ACTIVE_REQUEUE",
    "RETRY_ANNOTATION",
    "ROLLBACK_ANNOTATION",
    "TOKEN_TAG",
    "VERDICT_TAG",
    "Deletion",
    "Event",
    "Plan",
    "RegistryAction",
    "Scale",
    "plan",
    "plan_invalid",
]
