"""The decision: from an LLM and the observed world to desired children and next status.

`plan()` is a pure function. Everything the operator does (train, deploy a candidate,
load-test it, promote or refuse it, retire the old release) is decided here, from the
current observation only, so that an operator restarted at any moment recomputes the same
plan and converges without duplicating anything. Promotion is level-triggered too: the
registry's production alias *is* the record of which version won, and the production
Service, the HPA and the set of serving Deployments are all derived from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubellm.api.conditions import find, merge
from kubellm.api.resource import LLM
from kubellm.api.spec import OnFailure
from kubellm.api.status import (
    HISTORY_LIMIT,
    CandidateStatus,
    Condition,
    ConditionStatus,
    LLMStatus,
    LoadTestFigures,
    Phase,
    ProductionStatus,
    Release,
    TrainingStatus,
)
from kubellm.operator.builders import (
    build_candidate_service,
    build_hpa,
    build_loadtest_job,
    build_production_service,
    build_prompts_configmap,
    build_serving_deployment,
    build_training_job,
    training_hash,
)
from kubellm.operator.config import OperatorConfig
from kubellm.operator.naming import (
    candidate_service_name,
    content_hash,
    deployment_name,
    hpa_name,
    loadtest_job_name,
    production_service_name,
    prompts_configmap_name,
    training_job_name,
)
from kubellm.operator.observed import Observed

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

RETRY_ANNOTATION = "kubellm.dev/retry-rollout"
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
    status: LLMStatus = field(default_factory=LLMStatus)
    events: list[Event] = field(default_factory=list)
    #: seconds until the next reconcile is useful; None: steady, poll at the normal interval
    requeue_after: float | None = None

    def wait(self, seconds: float = ACTIVE_REQUEUE) -> None:
        self.requeue_after = min(self.requeue_after or seconds, seconds)


def _json(message: str | None) -> dict[str, Any]:
    if not message:
        return {}
    try:
        value = json.loads(message)
    except ValueError:
        return {"error": message.strip()[-500:]}
    return value if isinstance(value, dict) else {}


def parse_training_message(message: str | None) -> dict[str, Any]:
    """The JSON summary `kubellm train` leaves in its termination message."""
    return _json(message)


def _num(data: dict[str, Any], *keys: str) -> float | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def parse_loadtest_message(message: str | None, exit_code: int | None) -> LoadTestFigures:
    """The verdict summary of `kubellm loadtest`; anything unreadable is a failed gate."""
    data = _json(message)
    figures = data.get("figures") if isinstance(data.get("figures"), dict) else data
    assert isinstance(figures, dict)
    verdict = str(data.get("verdict") or data.get("status") or "")
    if exit_code is not None and exit_code != 0 and verdict == "pass":
        verdict = "fail"  # the exit code is the contract; never promote on a non-zero exit
    if verdict not in ("pass", "fail", "error"):
        verdict = "error" if exit_code != 0 else "fail"
    reasons = [str(r) for r in data.get("reasons") or [] if r]
    if verdict != "pass" and not reasons:
        reasons = [str(data.get("error") or "load test produced no readable verdict")]
    requests = _num(figures, "requests")
    return LoadTestFigures(
        verdict=verdict,
        p50_ms=_num(figures, "p50LatencyMs", "p50_ms"),
        p95_ms=_num(figures, "p95LatencyMs", "p95_ms"),
        p99_ms=_num(figures, "p99LatencyMs", "p99_ms"),
        p95_ttft_ms=_num(figures, "p95TimeToFirstTokenMs", "p95_ttft_ms"),
        requests_per_second=_num(figures, "requestsPerSecond", "rps"),
        tokens_per_second=_num(figures, "tokensPerSecond", "tokens_per_s"),
        error_rate=_num(figures, "errorRate", "error_rate"),
        requests=int(requests) if requests is not None else None,
        reasons=reasons[:10],
    )


def _cond(
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


def _seconds_since(stamp: str | None, now: datetime) -> float:
    if not stamp:
        return float("inf")
    try:
        then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return float("inf")
    return (now - then).total_seconds()


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Work:
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
        self.conditions.append(_cond(type_, status, reason, message, self.llm.generation))


def _plan_training(w: _Work) -> str:
    """Desired training Job and the Trained condition; returns the training state."""
    llm = w.llm
    training = llm.spec.training
    if training is None:
        w.condition(
            "Trained",
            T,
            "NoTrainingRequested",
            "spec.training is not set: versions come from the registry",
        )
        return "None"
    thash = training_hash(llm)
    name = training_job_name(llm.name, thash)
    prev = llm.status.training
    status = (
        prev.model_copy()
        if prev is not None and prev.spec_hash == thash
        else TrainingStatus(spec_hash=thash, job=name)
    )
    job = w.observed.jobs.get(name)
    for other in w.observed.jobs.values():
        if other.component == "training" and other.name != name and not other.deleting:
            w.out.delete.append(Deletion("Job", other.name))  # superseded by a spec change
            if not other.finished:
                w.out.events.append(
                    Event(
                        "Normal",
                        "TrainingSuperseded",
                        f"stopped {other.name}: spec.training changed",
                    )
                )
    for svc in w.observed.services.values():
        if svc.name.startswith(f"{llm.name}-train-") and svc.name != name:
            w.out.delete.append(Deletion("Service", svc.name))
    state: str
    if job is None and status.state in ("Succeeded", "Failed"):
        state = status.state  # finished earlier; its Job was cleaned up since
    elif job is None:
        for manifest in build_training_job(llm, w.config):
            w.want(manifest)
        if status.state is None:
            w.out.events.append(Event("Normal", "TrainingStarted", f"created Job {name}"))
        state = "Pending"
        w.out.wait()
    else:
        for manifest in build_training_job(llm, w.config):
            w.desired_names.add((manifest["kind"], manifest["metadata"]["name"]))
            if manifest["kind"] == "Service":
                w.want(manifest)
        status.started_at = job.start_time
        if job.complete:
            state = "Succeeded"
            summary = parse_training_message(job.message)
            status.model_version = (
                str(
                    summary.get("model_version")
                    or summary.get("modelVersion")
                    or status.model_version
                    or ""
                )
                or None
            )
            status.run_id = summary.get("run_id") or summary.get("runId") or status.run_id
            status.eval_loss = _num(summary, "eval_loss", "evalLoss") or status.eval_loss
            status.loss = _num(summary, "train_loss", "trainLoss", "loss") or status.loss
            status.finished_at = job.completion_time
            status.message = None
        elif job.failed_final:
            state = "Failed"
            summary = parse_training_message(job.message)
            status.message = str(summary.get("error") or job.reason or "training Job failed")
            status.finished_at = job.completion_time
        else:
            state = "Running"
            if job.progress is not None:
                status.step = job.progress.step
                status.total_steps = job.progress.total
                status.loss = job.progress.loss
            w.out.wait(3.0)
    status.state = state
    status.job = name
    w.status["training"] = status
    if state == "Succeeded":
        version = status.model_version
        w.condition(
            "Trained",
            T,
            "TrainingSucceeded",
            f"{name} registered version {version}" if version else f"{name} succeeded",
        )
    elif state == "Failed":
        w.condition("Trained", F, "TrainingFailed", f"{name}: {status.message}")
    elif state == "Running":
        progress = (
            f"step {status.step}/{status.total_steps or '?'}, loss {status.loss:.4f}"
            if status.step is not None and status.loss is not None
            else "starting"
        )
        w.condition("Trained", F, "TrainingRunning", f"{name}: {progress}")
    else:
        w.condition("Trained", F, "TrainingPending", f"{name} created")
    return state


def _retry_token(llm: LLM) -> str:
    token = llm.annotations.get(RETRY_ANNOTATION)
    return content_hash(token, 5) if token else ""


def _refused_key(version: str, token: str) -> str:
    return f"{version}@{token}" if token else version


def _is_refused(w: _Work, version: str, token: str) -> bool:
    if _refused_key(version, token) in w.llm.status.refused_versions:
        return True
    tags = w.observed.registry.candidate_tags
    return tags.get(VERDICT_TAG) == "refused" and tags.get(TOKEN_TAG, "") == token


def _service_url(w: _Work, name: str) -> str | None:
    svc = w.observed.services.get(name)
    if svc is None or not svc.cluster_ip or svc.cluster_ip == "None":
        return None
    return f"http://{svc.cluster_ip}:{w.config.serving_port}"


def _release(version: str, verdict: str, figures: LoadTestFigures, now: datetime) -> Release:
    return Release(
        version=version,
        verdict=verdict,
        at=_stamp(now),
        p95_ms=figures.p95_ms,
        requests_per_second=figures.requests_per_second,
        tokens_per_second=figures.tokens_per_second,
        error_rate=figures.error_rate,
        reasons=figures.reasons,
    )


def _figure_tags(figures: LoadTestFigures, verdict: str, token: str) -> dict[str, str]:
    tags = {VERDICT_TAG: verdict, TOKEN_TAG: token}
    if figures.p95_ms is not None:
        tags["kubellm.rollout.p95_ms"] = f"{figures.p95_ms:g}"
    if figures.reasons:
        tags["kubellm.rollout.reasons"] = "; ".join(figures.reasons)[:4000]
    return tags


def _plan_candidate(w: _Work, production: str | None) -> str | None:
    """Deploy, test and judge the candidate; returns the version promoted now, if any."""
    llm = w.llm
    reg = w.observed.registry
    version = reg.candidate
    token = _retry_token(llm)
    if version is None or version == production:
        w.condition(
            "CandidateReady",
            F,
            "NoCandidate",
            f"no version behind alias {llm.spec.rollout.candidate_alias!r} awaits a test"
            if version is None
            else f"candidate version {version} is in production",
        )
        w.condition(
            "LoadTestPassed",
            T if version else U,
            "Promoted" if version else "NoCandidate",
            f"version {version} passed the gate" if version else "nothing to test",
        )
        return None
    if _is_refused(w, version, token):
        w.condition(
            "CandidateReady",
            F,
            "CandidateRefused",
            f"version {version} was refused; move the alias or set the "
            f"{RETRY_ANNOTATION} annotation to test it again",
        )
        prev = find(llm.status.conditions, "LoadTestPassed")
        w.condition(
            "LoadTestPassed",
            F,
            "LoadTestFailed",
            prev.message
            if prev and prev.reason == "LoadTestFailed"
            else f"version {version} was refused by the load-test gate",
        )
        return None

    dep_name = deployment_name(llm.name, version)
    dep = w.observed.deployments.get(dep_name)
    cand = CandidateStatus(
        version=version,
        deployment=dep_name,
        state="Starting",
        since=(
            llm.status.candidate.since
            if llm.status.candidate and llm.status.candidate.version == version
            else _stamp(w.now)
        ),
    )
    w.status["candidate"] = cand
    w.want(build_serving_deployment(llm, version, w.config, replicas=llm.spec.serving.replicas.min))
    w.want(build_candidate_service(llm, version, w.config))
    w.want(build_prompts_configmap(llm))
    if cand.since == _stamp(w.now) and (
        llm.status.candidate is None or llm.status.candidate.version != version
    ):
        w.out.events.append(
            Event("Normal", "CandidateDeploying", f"deploying version {version} as {dep_name}")
        )

    if dep is None or not dep.available:
        problem = dep.pod_problem if dep else None
        if dep is not None and (dep.progress_deadline_exceeded or problem):
            figures = LoadTestFigures(
                verdict="error",
                reasons=[
                    f"candidate never became ready: {problem or 'progress deadline exceeded'}"
                ],
            )
            _refuse(w, version, token, figures, dep_name)
            return None
        w.condition(
            "CandidateReady", F, "CandidateStarting", f"waiting for {dep_name} to become ready"
        )
        w.condition("LoadTestPassed", U, "LoadTestPending", "the candidate is not ready yet")
        w.out.wait()
        return None
    w.condition(
        "CandidateReady",
        T,
        "CandidateAvailable",
        f"{dep_name} has {dep.available_replicas} available replica(s)",
    )
    target = _service_url(w, candidate_service_name(llm.name))
    job_name = loadtest_job_name(llm.name, version) + (f"-{token}" if token else "")
    cand.load_test_job = job_name
    job = w.observed.jobs.get(job_name)
    if job is None:
        if target is None:
            w.condition("LoadTestPassed", U, "LoadTestPending", "waiting for the candidate Service")
            w.out.wait()
            return None
        baseline = None
        prod_dep = w.observed.deployments.get(deployment_name(llm.name, production or ""))
        if production and prod_dep is not None and prod_dep.available:
            baseline = _service_url(w, production_service_name(llm.name))
        manifest = build_loadtest_job(llm, version, target, baseline, w.config)
        manifest["metadata"]["name"] = job_name
        w.want(manifest)
        cand.state = "LoadTesting"
        w.condition("LoadTestPassed", U, "LoadTestRunning", f"started Job {job_name}")
        w.out.events.append(
            Event(
                "Normal", "LoadTestStarted", f"load-testing version {version} with Job {job_name}"
            )
        )
        w.out.wait()
        return None
    w.desired_names.add(("Job", job_name))
    if not job.finished:
        cand.state = "LoadTesting"
        w.condition("LoadTestPassed", U, "LoadTestRunning", f"Job {job_name} is running")
        w.out.wait()
        return None
    figures = parse_loadtest_message(job.message, 0 if job.complete else (job.exit_code or 1))
    if job.complete and figures.verdict == "pass":
        cand.state = "Passed"
        cand.load_test = figures
        w.status["last_p95_ms"] = figures.p95_ms
        w.condition(
            "LoadTestPassed",
            T,
            "LoadTestPassed",
            f"version {version}: p95 {figures.p95_ms} ms, "
            f"{figures.requests_per_second} req/s, error rate {figures.error_rate}",
        )
        rollout = llm.spec.rollout
        w.out.registry.append(
            RegistryAction("set_tags", version, tags=_figure_tags(figures, "promoted", token))
        )
        w.out.registry.append(RegistryAction("set_alias", version, alias=rollout.production_alias))
        w.out.events.append(
            Event(
                "Normal",
                "Promoted",
                f"version {version} passed the load test and takes traffic "
                f"(p95 {figures.p95_ms} ms)",
            )
        )
        _add_history(w, _release(version, "promoted", figures, w.now))
        return version
    _refuse(w, version, token, figures, dep_name)
    return None


def _refuse(w: _Work, version: str, token: str, figures: LoadTestFigures, dep_name: str) -> None:
    llm = w.llm
    reasons = "; ".join(figures.reasons) or "the load test failed"
    w.status["candidate"] = CandidateStatus(
        version=version,
        deployment=dep_name,
        state="Refused",
        load_test=figures,
        since=_stamp(w.now),
    )
    if figures.p95_ms is not None:
        w.status["last_p95_ms"] = figures.p95_ms
    w.condition("CandidateReady", F, "CandidateRefused", f"version {version} refused")
    w.condition("LoadTestPassed", F, "LoadTestFailed", f"version {version}: {reasons}")
    w.out.registry.append(
        RegistryAction("set_tags", version, tags=_figure_tags(figures, "refused", token))
    )
    w.out.events.append(
        Event("Warning", "Refused", f"version {version} failed the load-test gate: {reasons}")
    )
    refused = [r for r in llm.status.refused_versions if r != _refused_key(version, token)]
    w.status["refused_versions"] = [*refused, _refused_key(version, token)][-HISTORY_LIMIT:]
    _add_history(w, _release(version, "refused", figures, w.now))
    if llm.spec.rollout.on_failure is OnFailure.ROLLBACK:
        # not desired any more: the deletion pass removes the Deployment and its Service
        w.desired_names.discard(("Deployment", dep_name))
        w.desired_names.discard(("Service", candidate_service_name(llm.name)))
        w.out.apply = [
            m for m in w.out.apply if (m["kind"], m["metadata"]["name"]) in w.desired_names
        ]


def _add_history(w: _Work, release: Release) -> None:
    history = w.status.get("history", list(w.llm.status.history))
    history = [
        release,
        *(
            r
            for r in history
            if not (r.version == release.version and r.verdict == release.verdict)
        ),
    ]
    w.status["history"] = history[:HISTORY_LIMIT]


def _plan_production(w: _Work, production: str | None, promoted_now: bool) -> None:
    llm = w.llm
    if production is None:
        w.condition(
            "Ready",
            F,
            "NoProductionVersion",
            f"no version behind alias {llm.spec.rollout.production_alias!r} yet",
        )
        return
    dep_name = deployment_name(llm.name, production)
    dep = w.observed.deployments.get(dep_name)
    if ("Deployment", dep_name) not in w.desired_names:
        w.want(
            build_serving_deployment(
                llm, production, w.config, replicas=llm.spec.serving.replicas.min
            )
        )
    w.want(build_production_service(llm, production, w.config))
    w.want(build_hpa(llm, production))
    svc_name = production_service_name(llm.name)
    svc = w.observed.services.get(svc_name)
    prev = llm.status.production
    promoted_at = (
        _stamp(w.now)
        if promoted_now or prev is None or prev.version != production
        else prev.promoted_at
    )
    w.status["production"] = ProductionStatus(
        version=production,
        deployment=dep_name,
        endpoint=f"http://{svc_name}.{llm.namespace}.svc:{w.config.serving_port}",
        address=_service_url(w, svc_name),
        promoted_at=promoted_at,
    )
    if dep is not None and dep.available and svc is not None and svc.version == production:
        w.condition(
            "Ready",
            T,
            "ProductionServing",
            f"version {production} serves at {svc_name} "
            f"({dep.available_replicas} available replica(s))",
        )
    else:
        w.condition(
            "Ready",
            F,
            "ProductionStarting",
            f"version {production}: waiting for {dep_name} and Service {svc_name}",
        )
        w.out.wait()


def _plan_deletions(w: _Work, production: str | None) -> None:
    """Remove children nothing wants any more; retire old releases only after draining."""
    prod_svc = w.observed.services.get(production_service_name(w.llm.name))
    promoted_at = w.status["production"].promoted_at if "production" in w.status else None
    drained = _seconds_since(promoted_at, w.now) >= w.config.drain_delay
    refused = {
        r.split("@")[0] for r in w.status.get("refused_versions", w.llm.status.refused_versions)
    }
    for dep in w.observed.deployments.values():
        if ("Deployment", dep.name) in w.desired_names or dep.deleting:
            continue
        if prod_svc is not None and prod_svc.version == dep.version:
            continue  # still behind the production Service: switch first, then retire
        if dep.version not in refused and not drained:
            w.out.wait(1.0)  # let clients and proxies move to the new release first
            continue
        w.out.delete.append(Deletion("Deployment", dep.name))
        w.out.events.append(Event("Normal", "Retired", f"deleted Deployment {dep.name}"))
    for svc in w.observed.services.values():
        if ("Service", svc.name) not in w.desired_names and not svc.name.startswith(
            f"{w.llm.name}-train-"
        ):
            w.out.delete.append(Deletion("Service", svc.name))
    if production is None and hpa_name(w.llm.name) in w.observed.hpas:
        w.out.delete.append(Deletion("HorizontalPodAutoscaler", hpa_name(w.llm.name)))
    for job in w.observed.jobs.values():
        if (
            job.component == "loadtest"
            and not job.finished
            and not job.deleting
            and ("Job", job.name) not in w.desired_names
        ):
            w.out.delete.append(Deletion("Job", job.name))  # its candidate is gone
    cm = prompts_configmap_name(w.llm.name)
    if cm in w.observed.configmaps and ("ConfigMap", cm) not in w.desired_names:
        w.out.delete.append(Deletion("ConfigMap", cm))


def _phase(w: _Work, training_state: str, promoted: str | None) -> Phase:
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


def _events_for_conditions(w: _Work, merged: list[Condition]) -> None:
    """One Event per condition transition (a change of status or reason)."""
    before = {c.type: c for c in w.llm.status.conditions}
    for cond in merged:
        old = before.get(cond.type)
        if old is not None and old.status == cond.status and old.reason == cond.reason:
            continue
        kind = "Warning" if cond.status is F and cond.reason in _FAILURE_REASONS else "Normal"
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
    now = now or datetime.now(UTC)
    w = _Work(llm=llm, observed=observed, config=config, now=now, out=Plan())
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
    training_state = _plan_training(w)
    production = reg.production
    promoted = _plan_candidate(w, production)
    if promoted is not None:
        production = promoted
    _plan_production(w, production, promoted is not None)
    _plan_deletions(w, production)

    merged = merge(llm.status.conditions, w.conditions, now=_stamp(now))
    _events_for_conditions(w, merged)
    phase = _phase(w, training_state, promoted)
    status = LLMStatus(
        phase=phase,
        observed_generation=llm.generation,
        conditions=merged,
        training=w.status.get("training"),
        candidate=w.status.get("candidate"),
        production=w.status.get("production"),
        last_p95_ms=w.status.get("last_p95_ms", llm.status.last_p95_ms),
        refused_versions=w.status.get("refused_versions", list(llm.status.refused_versions)),
        history=w.status.get("history", list(llm.status.history)),
        message=_message(w, phase),
    )
    w.out.status = status
    if promoted is not None:
        w.out.wait(0.5)
    return w.out


def _message(w: _Work, phase: Phase) -> str:
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


def plan_invalid(llm_status: LLMStatus, generation: int, errors: list[str]) -> Plan:
    """The plan for a spec that can never work: record why, touch nothing else."""
    message = "; ".join(errors)[:1024]
    cond = _cond("SpecValid", F, "InvalidSpec", message, generation)
    ready = _cond("Ready", F, "InvalidSpec", "the spec is invalid", generation)
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
        events.append(Event("Warning", "InvalidSpec", message))
    return Plan(status=status, events=events)
