"""Observe the world for one LLM: its children in Kubernetes and its registry aliases.

Thin I/O that turns API objects into the plain values of `observed.py`. Children are found
by label (`kubellm.dev/llm=<name>`), never by remembering what was created, so a restarted
operator sees exactly what a running one would.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from kubellm.api.resource import LLM
from kubellm.api.untrusted import loads
from kubellm.operator.kube import KubeApi
from kubellm.operator.naming import (
    LABEL_COMPONENT,
    LABEL_LLM,
    LABEL_VERSION,
    SPEC_HASH_ANNOTATION,
    Component,
)
from kubellm.operator.observed import (
    DeploymentState,
    JobState,
    Observed,
    RegistryState,
    ServiceState,
    TrainingProgress,
)
from kubellm.operator.planning.trust import ROLLED_BACK_TAG
from kubellm.redaction import redact
from kubellm.registry import Registry, RegistryError, RegistryUnavailable

__all__ = ["observe", "observe_registry", "parse_progress", "rolled_back_token"]

log = logging.getLogger(__name__)

_PROGRESS = re.compile(
    r"step (?P<step>\d+)/(?P<total>\d+|\?)"
    r"(?:.*?loss (?P<loss>[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?\b))?"
)
_POD_PROBLEMS = (
    "CrashLoopBackOff",
    "CreateContainerError",
    "ErrImagePull",
    "ImagePullBackOff",
    "CreateContainerConfigError",
    "InvalidImageName",
)


def parse_progress(log_text: str) -> TrainingProgress | None:
    """The last `step N/M ... loss X` line that `kubellm train` printed.

    A log is whatever the container wrote: a line that looks almost right (``loss ...``,
    ``loss nan``, a step beyond any int64) yields what can be read, never an exception."""
    for line in reversed(log_text.splitlines()):
        m = _PROGRESS.search(line)
        if not m:
            continue
        step, total, loss = m.group("step"), m.group("total"), m.group("loss")
        if len(step) > 18 or len(total) > 18:
            continue  # not a step count anyone trains for
        value = float(loss) if loss else None
        return TrainingProgress(
            step=int(step),
            total=int(total) if total.isdigit() else None,
            loss=value if value is not None and math.isfinite(value) else None,
        )
    return None


def _controller_uid(obj: dict[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            uid = ref.get("uid")
            return str(uid) if uid else None
    return None


def _controlled_by(objects: list[dict[str, Any]], owner_uid: str | None) -> list[dict[str, Any]]:
    """The objects whose controller is ``owner_uid``: names and labels can be copied by
    anyone who may create a Job or a Pod in the namespace, a controller's uid cannot."""
    if not owner_uid:
        return objects  # an owner without uid (a test double): fall back to labels
    return [o for o in objects if _controller_uid(o) == owner_uid]


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type", ""): c for c in (obj.get("status") or {}).get("conditions") or []}


def _terminated(pod: dict[str, Any]) -> dict[str, Any] | None:
    """The container's final result; with restartPolicy OnFailure a killed container's
    message may only survive in ``lastState`` (the previous attempt's)."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        last = (cs.get("lastState") or {}).get("terminated")
        if term and (term.get("message") or not last):
            return dict(term)
        if last:
            return {**last, **({"exitCode": term["exitCode"]} if term else {})}
    return None


def _job_state(api: KubeApi, ns: str, job: dict[str, Any], pods: list[dict[str, Any]]) -> JobState:
    meta = job["metadata"]
    st = job.get("status") or {}
    conds = _conditions(job)
    complete = conds.get("Complete", {}).get("status") == "True"
    failed = conds.get("Failed", {}).get("status") == "True"
    labels = meta.get("labels") or {}
    name = meta["name"]
    if meta.get("uid"):
        mine = _controlled_by(pods, meta["uid"])
    else:  # a Job without uid (a test double): its pods by the job-name label
        mine = [
            p
            for p in pods
            if (p["metadata"].get("labels") or {}).get(
                "batch.kubernetes.io/job-name", (p["metadata"].get("labels") or {}).get("job-name")
            )
            == name
        ]
    mine.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
    message = exit_code = None
    for pod in reversed(mine):
        term = _terminated(pod)
        if term is not None:
            message = term.get("message")
            exit_code = term.get("exitCode")
            break
    progress = None
    component = labels.get(LABEL_COMPONENT, "")
    if component == Component.TRAINING and not (complete or failed):
        running = [p for p in mine if (p.get("status") or {}).get("phase") == "Running"]
        if running:
            try:
                progress = parse_progress(api.pod_log(ns, running[-1]["metadata"]["name"], 30))
            except Exception as exc:  # progress is a nicety: never let it break observe()
                log.debug("no training progress from %s: %s", name, exc)
    reason = conds.get("Failed", {}).get("reason") or conds.get("Failed", {}).get("message")
    return JobState(
        name=name,
        component=component,
        version=labels.get(LABEL_VERSION),
        active=int(st.get("active") or 0),
        succeeded=int(st.get("succeeded") or 0),
        failed=int(st.get("failed") or 0),
        complete=complete,
        failed_final=failed,
        message=message,
        exit_code=exit_code,
        reason=reason,
        progress=progress,
        start_time=st.get("startTime"),
        completion_time=st.get("completionTime")
        or conds.get("Failed", {}).get("lastTransitionTime"),
        deleting=bool(meta.get("deletionTimestamp")),
    )


def _pod_problem(pods: list[dict[str, Any]], version: str | None) -> str | None:
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        if labels.get(LABEL_VERSION) != version or labels.get(LABEL_COMPONENT) != Component.SERVING:
            continue
        st = pod.get("status") or {}
        statuses = [*(st.get("initContainerStatuses") or []), *(st.get("containerStatuses") or [])]
        for cs in statuses:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in _POD_PROBLEMS and int(cs.get("restartCount") or 0) >= 2:
                last = (cs.get("lastState") or {}).get("terminated") or {}
                detail = last.get("message") or waiting.get("message") or ""
                return f"{cs.get('name')}: {waiting['reason']} {detail}".strip()[:500]
        if st.get("phase") == "Failed":
            return f"pod {pod['metadata']['name']} failed: {st.get('reason') or ''}".strip()
    return None


def _deployment_state(dep: dict[str, Any], pods: list[dict[str, Any]]) -> DeploymentState:
    meta = dep["metadata"]
    st = dep.get("status") or {}
    progressing = _conditions(dep).get("Progressing", {})
    version = (meta.get("labels") or {}).get(LABEL_VERSION)
    return DeploymentState(
        name=meta["name"],
        version=version,
        spec_hash=(meta.get("annotations") or {}).get(SPEC_HASH_ANNOTATION),
        replicas=int(st.get("replicas") or 0),
        desired_replicas=(dep.get("spec") or {}).get("replicas"),
        ready_replicas=int(st.get("readyReplicas") or 0),
        available_replicas=int(st.get("availableReplicas") or 0),
        updated_replicas=int(st.get("updatedReplicas") or 0),
        generation=int(meta.get("generation") or 1),
        observed_generation=int(st.get("observedGeneration") or 0),
        progress_deadline_exceeded=progressing.get("reason") == "ProgressDeadlineExceeded",
        pod_problem=_pod_problem(pods, version),
        deleting=bool(meta.get("deletionTimestamp")),
    )


def _hash_of(obj: dict[str, Any]) -> str | None:
    return (obj["metadata"].get("annotations") or {}).get(SPEC_HASH_ANNOTATION)


#: the longest rolled-back tag read (MLflow keeps at most 5000 characters per tag value), and
#: the longest retry token in it (the operator writes 5 hex digits)
_TAG_LIMIT, _TOKEN_LIMIT = 8192, 64


def rolled_back_token(tags: Mapping[str, str]) -> str | None:
    """The retry token production was rolled back from a version under, from its tag
    ``kubellm.rollout.rolledBack``; None: no such tag.

    Any registry writer can write the tag, so its value is read as hostile text: a value
    that is too long, not a JSON object, or without a short string ``retryToken`` still
    says the version was rolled back, under no retry token (""). Withholding a promotion
    is all the tag can do (`planning.trust.is_withdrawn`)."""
    value = tags.get(ROLLED_BACK_TAG)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _TAG_LIMIT:
        return ""
    try:
        doc = loads(value)
    except ValueError:
        return ""
    token = doc.get("retryToken") if isinstance(doc, dict) else None
    if not isinstance(token, str) or len(token) > _TOKEN_LIMIT:
        return ""
    return token


def observe_registry(registry: Registry, llm: LLM) -> RegistryState:
    name = llm.spec.model.registered_model
    rollout = llm.spec.rollout
    try:
        candidate = registry.resolve_alias(name, rollout.candidate_alias)
        production = registry.resolve_alias(name, rollout.production_alias)
        production_tags: dict[str, str] = {}
        if production is not None:
            production_tags = registry.get_version_tags(name, production)
        tags: dict[str, str] = {}
        if candidate is not None:
            same = candidate == production
            tags = production_tags if same else registry.get_version_tags(name, candidate)
    except RegistryUnavailable as exc:
        return RegistryState(reachable=False, error=redact(str(exc)))
    except RegistryError as exc:
        return RegistryState(reachable=False, error=redact(str(exc)))
    return RegistryState(
        candidate=candidate,
        production=production,
        candidate_tags=tags,
        production_tags=production_tags,
        candidate_rolled_back=rolled_back_token(tags),
    )


def observe(api: KubeApi, llm: LLM, registry: Callable[[], Registry]) -> Observed:
    ns = llm.namespace
    selector = f"{LABEL_LLM}={llm.name}"
    pods = api.list("Pod", ns, selector)
    jobs = {
        j["metadata"]["name"]: _job_state(api, ns, j, pods)
        for j in _controlled_by(api.list("Job", ns, selector), llm.uid)
    }
    deployments = {
        d["metadata"]["name"]: _deployment_state(d, pods)
        for d in api.list("Deployment", ns, selector)
    }
    services = {}
    for svc in api.list("Service", ns, selector):
        meta = svc["metadata"]
        spec = svc.get("spec") or {}
        services[meta["name"]] = ServiceState(
            name=meta["name"],
            version=(spec.get("selector") or {}).get(LABEL_VERSION),
            cluster_ip=spec.get("clusterIP"),
            spec_hash=(meta.get("annotations") or {}).get(SPEC_HASH_ANNOTATION),
        )
    configmaps = {c["metadata"]["name"]: _hash_of(c) for c in api.list("ConfigMap", ns, selector)}
    hpas = {
        h["metadata"]["name"]: _hash_of(h)
        for h in api.list("HorizontalPodAutoscaler", ns, selector)
    }
    try:
        reg_state = observe_registry(registry(), llm)
    except Exception as exc:  # building the client failed (bad URI): treat as unreachable
        reg_state = RegistryState(reachable=False, error=redact(str(exc)))
    return Observed(
        jobs=jobs,
        deployments=deployments,
        services=services,
        configmaps=configmaps,
        hpas=hpas,
        registry=reg_state,
    )
