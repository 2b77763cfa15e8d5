"""Condition helpers that follow the Kubernetes API conventions.

`lastTransitionTime` changes only when `status` changes, so a reconcile that recomputes the
same condition does not churn the object (and does not wake every watcher).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from kubellm.api.status import Condition
from kubellm.api.timestamps import now_rfc3339
from kubellm.api.vocabulary import CONDITION_ORDER, ConditionStatus, ConditionType

__all__ = ["find", "is_true", "merge"]


def find(conditions: Iterable[Condition], type_: ConditionType) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: Iterable[Condition], type_: ConditionType) -> bool:
    cond = find(conditions, type_)
    return cond is not None and cond.status is ConditionStatus.TRUE


def merge(
    existing: Sequence[Condition],
    updates: Iterable[Condition],
    *,
    now: str | None = None,
) -> list[Condition]:
    """Apply ``updates`` onto ``existing``, keeping transition times when status is unchanged.

    The order of types is stable: known types first in their canonical order, then others.
    """
    stamp = now or now_rfc3339()
    by_type = {c.type: c for c in existing}
    for update in updates:
        old = by_type.get(update.type)
        if old is not None and old.status == update.status:
            update = update.model_copy(update={"last_transition_time": old.last_transition_time})
        elif not update.last_transition_time:
            update = update.model_copy(update={"last_transition_time": stamp})
        by_type[update.type] = update
    order: dict[str, int] = {t: i for i, t in enumerate(CONDITION_ORDER)}
    return sorted(by_type.values(), key=lambda c: (order.get(c.type, len(order)), c.type))
