"""Carry out a plan: registry first, then children, then deletions, events, and status.

The order matters for promotion: the registry's production alias is the record of the
decision, so it moves before the Service switches; if the registry call fails, nothing
else happens and the next reconcile tries again. Children are created, or merge-patched
when the hash of their rendered spec changed (drift), never blindly re-applied. One thing
goes before the registry: scaling a release up from zero, for which requests wait.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kubellm.api.identity import API_VERSION, KIND
from kubellm.api.resource import LLM
from kubellm.api.timestamps import now_rfc3339
from kubellm.api.vocabulary import EventReason, EventType
from kubellm.operator.builders import owner_reference
from kubellm.operator.kube import ApiError, KubeApi
from kubellm.operator.naming import SPEC_HASH_ANNOTATION, content_hash
from kubellm.operator.observed import Observed
from kubellm.operator.planning import Event, Plan, RegistryAction
from kubellm.redaction import redact, redact_tree
from kubellm.registry import Registry

__all__ = [
    "ChildrenRefused",
    "Ref",
    "apply_registry",
    "execute",
    "merge_patch_diff",
    "post_event",
    "write_outcome",
]

log = logging.getLogger(__name__)

#: answers that no retry of the same request fixes by itself: forbidden, invalid, quota
REFUSALS = frozenset({400, 403, 422})


class ChildrenRefused(Exception):
    """The API server refused to create, patch or delete a child (status says which)."""


def merge_patch_diff(old: Any, new: Any) -> Any:
    """An RFC 7386 merge patch that turns ``old`` into ``new`` (null removes a key)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch_diff(old[key], value)
    return patch


def apply_registry(registry: Registry, llm: LLM, actions: list[RegistryAction]) -> None:
    name = llm.spec.model.registered_model
    for action in actions:
        if action.kind == "set_tags":
            registry.set_version_tags(name, action.version, action.tags)
        elif action.kind == "set_alias" and action.alias:
            registry.set_alias(name, action.alias, action.version)
            log.info("moved %s@%s -> %s", name, action.alias, action.version)


def _observed_hash(observed: Observed, kind: str, name: str) -> tuple[bool, str | None]:
    if kind == "Deployment":
        d = observed.deployments.get(name)
        return d is not None, d.spec_hash if d else None
    if kind == "Service":
        s = observed.services.get(name)
        return s is not None, s.spec_hash if s else None
    if kind == "ConfigMap":
        return name in observed.configmaps, observed.configmaps.get(name)
    if kind == "HorizontalPodAutoscaler":
        return name in observed.hpas, observed.hpas.get(name)
    if kind == "Job":
        return name in observed.jobs, None
    return False, None


def _prepare(llm: LLM, manifest: dict[str, Any]) -> tuple[dict[str, Any], str]:
    body = {**manifest, "metadata": dict(manifest["metadata"])}
    digest = content_hash(manifest)
    meta = body["metadata"]
    meta["annotations"] = {**(meta.get("annotations") or {}), SPEC_HASH_ANNOTATION: digest}
    meta["ownerReferences"] = [owner_reference(llm)]
    return body, digest


def _apply_child(api: KubeApi, llm: LLM, observed: Observed, manifest: dict[str, Any]) -> None:
    kind = manifest["kind"]
    name = manifest["metadata"]["name"]
    exists, seen_hash = _observed_hash(observed, kind, name)
    body, digest = _prepare(llm, manifest)
    if not exists:
        try:
            api.create(kind, llm.namespace, body)
            log.info("created %s %s/%s", kind, llm.namespace, name)
            return
        except ApiError as exc:
            if exc.status != 409:
                raise
            if kind == "Job":
                # Ours would have been observed (found by controller uid): this one is not
                # the operator's, and its result is never read.
                log.warning(
                    "Job %s/%s exists but is not controlled by LLM %s: ignored; delete it "
                    "so the operator can create its own",
                    llm.namespace,
                    name,
                    llm.name,
                )
                return
            if kind == "PersistentVolumeClaim":
                return  # created once with its training; a claim's spec is immutable
    if seen_hash == digest or kind == "Job":
        return
    patch = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
    if kind == "Deployment":
        # Replicas have one writer: the HPA (or the candidate's initial count at creation).
        patch["spec"] = {k: v for k, v in patch["spec"].items() if k != "replicas"}
    api.patch(kind, llm.namespace, name, patch)
    log.info("patched %s %s/%s (spec changed)", kind, llm.namespace, name)


@dataclass(frozen=True)
class Ref:
    """Enough of an LLM to address it: events and status need no parsed spec."""

    name: str
    namespace: str
    uid: str | None


def post_event(api: KubeApi, llm: Ref, event: Event) -> None:
    stamp = now_rfc3339()
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{llm.name}.", "namespace": llm.namespace},
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": llm.name,
            "namespace": llm.namespace,
            "uid": llm.uid or "",
        },
        "type": event.type,
        "reason": event.reason,
        "message": redact(event.message)[:1024],
        "source": {"component": "kubellm-operator"},
        "reportingComponent": "kubellm-operator",
        "reportingInstance": "kubellm-operator",
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
    try:
        api.create("Event", llm.namespace, body)
    except ApiError as exc:  # an Event is best effort; the status carries the same facts
        log.warning("could not post event %s: %s", event.reason, exc)


def _scale(api: KubeApi, llm: LLM, deployment: str, replicas: int) -> None:
    api.patch("Deployment", llm.namespace, deployment, {"spec": {"replicas": replicas}})
    log.info("scaled Deployment %s/%s to %d", llm.namespace, deployment, replicas)


def execute(
    api: KubeApi,
    registry: Registry | None,
    llm: LLM,
    observed: Observed,
    plan: Plan,
    raw_status: dict[str, Any],
) -> bool:
    """Apply ``plan``; return True when the status changed and was written.

    A release woken from zero is scaled up before anything else (registry calls, children,
    deletions): a request is held at the gateway until its pod is ready, and nothing else
    in the plan needs to happen before the pod starts (a registry that hangs would hold it).
    """
    wakes = [s for s in plan.scale if s.replicas > 0]
    for scale in wakes:
        _scale(api, llm, scale.deployment, scale.replicas)
    if plan.registry:
        assert registry is not None
        apply_registry(registry, llm, plan.registry)
    order = {
        "PersistentVolumeClaim": 0,
        "ConfigMap": 0,
        "Service": 1,
        "Deployment": 2,
        "Job": 3,
        "HorizontalPodAutoscaler": 4,
    }
    refused: list[str] = []
    for manifest in sorted(plan.apply, key=lambda m: order.get(m["kind"], 9)):
        try:
            _apply_child(api, llm, observed, manifest)
        except ApiError as exc:
            if exc.status not in REFUSALS:
                raise
            refused.append(f"{manifest['kind']} {manifest['metadata']['name']}: {exc}")
    for scale in plan.scale:  # to and from zero: the only counts the operator writes
        if scale.replicas == 0:
            _scale(api, llm, scale.deployment, 0)
    for deletion in plan.delete:
        try:
            api.delete(deletion.kind, llm.namespace, deletion.name)
        except ApiError as exc:
            if exc.status not in REFUSALS:
                raise
            refused.append(f"delete {deletion.kind} {deletion.name}: {exc}")
            continue
        log.info("deleted %s %s/%s", deletion.kind, llm.namespace, deletion.name)
    if refused:
        # The API server refused a child (RBAC, admission, quota, validation): say so where
        # users look, then fail the reconcile so it is retried with backoff.
        detail = redact("; ".join(refused))[:900]
        plan.status.message = f"the API server refused: {detail}"
        plan.events.append(Event(EventType.WARNING, EventReason.APPLY_REFUSED, plan.status.message))
    changed = write_outcome(api, Ref(llm.name, llm.namespace, llm.uid), plan, raw_status)
    if refused:
        raise ChildrenRefused(plan.status.message)
    return changed


def write_outcome(api: KubeApi, ref: Ref, plan: Plan, raw_status: dict[str, Any]) -> bool:
    """Post the plan's events and write its status (once, only if it changed)."""
    for event in plan.events:
        post_event(api, ref, event)
    new_status = redact_tree(plan.status.dump())  # no URI userinfo in what users read
    if new_status == raw_status:
        return False
    api.patch(
        "LLM",
        ref.namespace,
        ref.name,
        {"status": merge_patch_diff(raw_status, new_status)},
        subresource="status",
    )
    return True
