"""Planning step 2: which version production is. Only one this operator verified itself.

The registry's production alias is not the record of what passed the gate: training pods,
pipelines and people hold credentials that can move any alias of the model (MLflow grants
EDIT per registered model, not per alias). So the operator serves only versions it
promoted itself, and it trusts, in this order:

1. its own status (``promotedVersions``, the ``promoted`` releases of ``history``), which
   only the operator writes: through the status subresource, which tenants get no RBAC on;
2. when that status is lost (the LLM was re-created, or restored without its status), the
   promotion tag it wrote on the version behind the alias, and only when the tag carries a
   valid HMAC under the operator's promotion key (``KUBELLM_PROMOTION_KEY``), which no
   workload holds. ``kubellm.promotedBy=<uid>`` alone can be written by any registry writer
   (and the uid read by anyone who can list LLMs), so it is informational. Without a key,
   nothing but the status is trusted: after a lost status a version passes the gate again.

An alias moved outside the operator is reported (a Warning Event and the condition
``ProductionAliasDrift``) and otherwise ignored: production stays on the last verified
version until another version passes the gate (move the candidate alias to it).

Going back is a command, not an alias move: the annotation ``kubellm.dev/rollback-to=N``
on the LLM (an RBAC-guarded write, unlike the registry) makes N production again, if this
operator promoted N before. The version production left is withdrawn: it is not promoted
again, even while the candidate alias names it and its passed load-test Job is still there,
until a new trigger: the ``kubellm.dev/retry-rollout`` annotation changes (a new version
behind the candidate alias goes through the gate as usual). A rollback says so like the
post-promotion watch's (`watching`): the condition ``RolledBack`` (reason
``RollbackRequested``) and the registry tag ``kubellm.rollout.rolledBack`` on the version
left, which records the retry token of the rollback.
Each annotation value is handled once; ``N@anything`` repeats a request for the same N.

A withdrawal is remembered twice: in status (``withdrawnVersions``) and in that tag, so a
version is not promoted again when the status is lost either (the LLM re-created over the
same registry). The tag is read only to withhold a promotion, never to grant one: anyone
who can write it can already hold a version back (move the candidate alias, tag it
refused), so it needs no signature. Its value is untrusted text, read defensively
(`reading.rolled_back_token`): one that cannot be read still withdraws the version, under
no retry token.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from kubellm.api.resource import LLM
from kubellm.api.status import HISTORY_LIMIT, PROMOTED_LIMIT, RollbackStatus
from kubellm.api.vocabulary import (
    ConditionType,
    EventReason,
    EventType,
    Reason,
    RollbackState,
    RollbackTrigger,
)
from kubellm.operator.naming import content_hash
from kubellm.operator.planning.plans import RegistryAction
from kubellm.operator.planning.work import RETRY_ANNOTATION, ROLLBACK_ANNOTATION, F, T, Work, stamp

__all__ = [
    "PROMOTED_BY_TAG",
    "PROMOTION_SIGNATURE_TAG",
    "ROLLED_BACK_TAG",
    "is_withdrawn",
    "plan_alias_drift",
    "plan_rollback",
    "plan_verified_production",
    "promotion_signature",
    "promotion_tags",
    "record_promotion",
    "retry_token",
    "token_key",
    "verified_versions",
    "withdraw",
]

PROMOTED_BY_TAG = "kubellm.promotedBy"
PROMOTION_SIGNATURE_TAG = "kubellm.promotionSignature"
#: the registry tag on a version production was rolled back from: when, to which version,
#: under which retry token, and why (JSON; the watch adds the figures that broke it)
ROLLED_BACK_TAG = "kubellm.rollout.rolledBack"


def promotion_signature(key: str, llm: LLM, version: str) -> str:
    """HMAC-SHA256 over what a promotion is about: this LLM (by namespace and name, which
    survive a re-creation; the uid does not), its registered model, and the version."""
    subject = f"{llm.namespace}/{llm.name}/{llm.spec.model.registered_model}/{version}"
    return hmac.new(key.encode(), subject.encode(), hashlib.sha256).hexdigest()


def promotion_tags(llm: LLM, version: str, key: str | None) -> dict[str, str]:
    """The tags the operator writes on a version it promotes."""
    tags = {PROMOTED_BY_TAG: llm.uid or ""}
    if key:
        tags[PROMOTION_SIGNATURE_TAG] = promotion_signature(key, llm, version)
    return tags


def _signed(w: Work, version: str, tags: dict[str, str]) -> bool:
    key = w.config.promotion_key
    if not key:
        return False
    given = tags.get(PROMOTION_SIGNATURE_TAG, "")
    return hmac.compare_digest(given.encode(), promotion_signature(key, w.llm, version).encode())


def verified_versions(w: Work) -> list[str]:
    """Versions this operator promoted, oldest first, as this pass knows them."""
    return list(w.status.promoted_versions)


def record_promotion(w: Work, version: str) -> None:
    versions = [v for v in verified_versions(w) if v != version]
    w.status.promoted_versions = [*versions, version][-PROMOTED_LIMIT:]


def plan_verified_production(w: Work) -> str | None:
    """The production version to serve: the last one this operator verified, or None."""
    llm = w.llm
    reg = w.observed.registry
    verified = verified_versions(w)
    previous = llm.status.production.version if llm.status.production else None
    if previous is not None and previous in verified:
        return previous
    alias = reg.production
    if alias is not None and (alias in verified or _signed(w, alias, dict(reg.production_tags))):
        # Status lost or never written (first pass after an upgrade): the alias names a
        # version this operator promoted, by its own record or by its signed tag.
        record_promotion(w, alias)
        return alias
    return None


def retry_token(llm: LLM) -> str:
    """Short hash of the retry annotation: a new value is a new trigger for a version."""
    token = llm.annotations.get(RETRY_ANNOTATION)
    return content_hash(token, 5) if token else ""


def token_key(version: str, token: str) -> str:
    """``VERSION`` or ``VERSION@TOKEN``: how refusals and withdrawals are recorded."""
    return f"{version}@{token}" if token else version


def is_withdrawn(w: Work, version: str) -> bool:
    """Production was rolled back from ``version`` and no new trigger came since: by this
    LLM's status, or by the rolled-back tag on the candidate version (same rule: the
    rollback's retry token is the current one)."""
    token = retry_token(w.llm)
    if token_key(version, token) in w.status.withdrawn_versions:
        return True
    reg = w.observed.registry
    return version == reg.candidate and reg.candidate_rolled_back == token


def withdraw(w: Work, version: str) -> None:
    """Production left ``version`` by a rollback: not promoted again until a new trigger."""
    key = token_key(version, retry_token(w.llm))
    withdrawn = w.status.withdrawn_versions
    w.status.withdrawn_versions = [*(v for v in withdrawn if v != key), key][-HISTORY_LIMIT:]


def plan_rollback(w: Work, production: str | None) -> str | None:
    """Carry out a ``kubellm.dev/rollback-to`` request; returns the production version."""
    llm = w.llm
    request = (llm.annotations.get(ROLLBACK_ANNOTATION) or "").strip()
    done = llm.status.rollback
    if not request or (done is not None and done.request == request):
        return production
    target = request.split("@", 1)[0].strip()
    verified = verified_versions(w)
    refusal = None
    if not target.isdigit():
        refusal = f"{ROLLBACK_ANNOTATION}={request!r}: not a version number"
    elif target not in verified:
        known = ", ".join(verified) or "none yet"
        refusal = (
            f"version {target} was never promoted by this operator (verified versions: "
            f"{known}); only those can be rolled back to"
        )
    if refusal is not None:
        w.status.rollback = RollbackStatus(
            request=request,
            version=None,
            state=RollbackState.REFUSED,
            message=refusal,
            at=stamp(w.now),
        )
        w.event(EventType.WARNING, EventReason.ROLLBACK_REFUSED, refusal)
        return production
    w.status.rollback = RollbackStatus(
        request=request,
        version=target,
        from_version=production,
        state=RollbackState.DONE,
        at=stamp(w.now),
    )
    if target == production:
        return production
    alias = llm.spec.rollout.production_alias
    w.out.registry.append(RegistryAction("set_alias", target, alias=alias))
    if production is not None:
        withdraw(w, production)
        tag = _rolled_back_tag(w, target, request)
        w.out.registry.append(RegistryAction("set_tags", production, tags={ROLLED_BACK_TAG: tag}))
    w.out.rollback = RollbackTrigger.ANNOTATION
    w.condition(
        ConditionType.ROLLED_BACK,
        T,
        Reason.ROLLBACK_REQUESTED,
        f"production went back from version {production} to version {target} "
        f"({ROLLBACK_ANNOTATION}={request})",
    )
    w.event(
        EventType.NORMAL,
        EventReason.ROLLED_BACK,
        f"production goes back from version {production} to version {target} "
        f"({ROLLBACK_ANNOTATION}={request})",
    )
    return target


def _rolled_back_tag(w: Work, target: str, request: str) -> str:
    """The rolled-back tag of a requested rollback (the watch's carries figures too)."""
    figures = {
        "at": stamp(w.now),
        "to": target,
        "trigger": str(RollbackTrigger.ANNOTATION),
        "retryToken": retry_token(w.llm),
        "reasons": [f"{ROLLBACK_ANNOTATION}={request}"[:300]],
    }
    return json.dumps(figures, sort_keys=True)


def _alias_after(w: Work) -> str | None:
    """Where the production alias points once this plan's registry actions ran."""
    alias = w.llm.spec.rollout.production_alias
    moves = [a for a in w.out.registry if a.kind == "set_alias" and a.alias == alias]
    return moves[-1].version if moves else w.observed.registry.production


def plan_alias_drift(w: Work, production: str | None) -> None:
    """Condition ProductionAliasDrift: does the registry alias name what is served?"""
    alias_name = w.llm.spec.rollout.production_alias
    alias = _alias_after(w)
    if alias == production:
        w.condition(
            ConditionType.PRODUCTION_ALIAS_DRIFT,
            F,
            Reason.ALIAS_IN_SYNC,
            f"alias {alias_name!r} names version {production}, the verified release"
            if production
            else f"no version is behind alias {alias_name!r} and none is verified yet",
        )
        return
    served = (
        f"version {production} (the last version that passed the gate) keeps serving"
        if production
        else "nothing is served until a version passes the gate"
    )
    moved = f"version {alias}" if alias else "no version"
    if alias is not None and alias in verified_versions(w):
        how = f"to go back to version {alias}, annotate the LLM {ROLLBACK_ANNOTATION}={alias}"
    else:
        how = (
            f"only versions that pass the load test are served: move alias "
            f"{w.llm.spec.rollout.candidate_alias!r} to a version to test it"
        )
    w.condition(
        ConditionType.PRODUCTION_ALIAS_DRIFT,
        T,
        Reason.ALIAS_MOVED_OUTSIDE_OPERATOR,
        f"alias {alias_name!r} names {moved}, set outside the operator; {served}; {how}",
    )
