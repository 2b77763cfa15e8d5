"""Planning steps 3-5: the candidate's Deployment, Service and load test, its verdict
(promote or refuse), the production release, and retiring what nothing wants any more.

``production`` here is always the version this operator verified (`plan_trust`), never the
registry alias as such, so a reconcile after a crash at any point recomputes the same
children, and an alias moved by someone else changes none of them.
"""

from __future__ import annotations

from datetime import datetime

from kubellm.api.conditions import find
from kubellm.api.spec import OnFailure
from kubellm.api.status import (
    HISTORY_LIMIT,
    CandidateStatus,
    LoadTestFigures,
    ProductionStatus,
    Release,
)
from kubellm.api.vocabulary import (
    CandidateState,
    ConditionType,
    EventReason,
    EventType,
    LoadTestVerdict,
    Reason,
    ReleaseVerdict,
)
from kubellm.operator.builders import (
    build_candidate_service,
    build_loadtest_job,
    build_production_service,
    build_prompts_configmap,
    build_serving_deployment,
)
from kubellm.operator.naming import (
    candidate_service_name,
    deployment_name,
    hpa_name,
    loadtest_job_name,
    production_service_name,
    prompts_configmap_name,
)
from kubellm.operator.planning.plans import Deletion, RegistryAction
from kubellm.operator.planning.scaling import initial_replicas, plan_serving
from kubellm.operator.planning.trust import (
    is_withdrawn,
    promotion_tags,
    record_promotion,
    retry_token,
    token_key,
)
from kubellm.operator.planning.work import (
    RETRY_ANNOTATION,
    TOKEN_TAG,
    VERDICT_TAG,
    F,
    T,
    U,
    Work,
    seconds_since,
    stamp,
)
from kubellm.operator.verdicts import parse_loadtest_message

__all__ = ["plan_candidate", "plan_deletions", "plan_production"]


def _is_refused(w: Work, version: str, token: str) -> bool:
    if token_key(version, token) in w.llm.status.refused_versions:
        return True
    tags = w.observed.registry.candidate_tags
    return tags.get(VERDICT_TAG) == ReleaseVerdict.REFUSED and tags.get(TOKEN_TAG, "") == token


def _service_url(w: Work, name: str) -> str | None:
    svc = w.observed.services.get(name)
    if svc is None or not svc.cluster_ip or svc.cluster_ip == "None":
        return None
    return f"http://{svc.cluster_ip}:{w.config.serving_port}"


def _release(
    version: str, verdict: ReleaseVerdict, figures: LoadTestFigures, now: datetime
) -> Release:
    return Release(
        version=version,
        verdict=verdict,
        at=stamp(now),
        p95_ms=figures.p95_ms,
        requests_per_second=figures.requests_per_second,
        tokens_per_second=figures.tokens_per_second,
        error_rate=figures.error_rate,
        reasons=figures.reasons,
    )


def _figure_tags(figures: LoadTestFigures, verdict: ReleaseVerdict, token: str) -> dict[str, str]:
    tags = {VERDICT_TAG: str(verdict), TOKEN_TAG: token}
    if figures.p95_ms is not None:
        tags["kubellm.rollout.p95_ms"] = f"{figures.p95_ms:g}"
    if figures.reasons:
        tags["kubellm.rollout.reasons"] = "; ".join(figures.reasons)[:4000]
    return tags


def plan_candidate(w: Work, production: str | None) -> str | None:
    """Deploy, test and judge the candidate; returns the version promoted now, if any."""
    llm = w.llm
    reg = w.observed.registry
    version = reg.candidate
    token = retry_token(llm)
    if version is None or version == production:
        w.condition(
            ConditionType.CANDIDATE_READY,
            F,
            Reason.NO_CANDIDATE,
            f"no version behind alias {llm.spec.rollout.candidate_alias!r} awaits a test"
            if version is None
            else f"candidate version {version} is in production",
        )
        w.condition(
            ConditionType.LOAD_TEST_PASSED,
            T if version else U,
            Reason.PROMOTED if version else Reason.NO_CANDIDATE,
            f"version {version} passed the gate" if version else "nothing to test",
        )
        return None
    if _is_refused(w, version, token):
        w.condition(
            ConditionType.CANDIDATE_READY,
            F,
            Reason.CANDIDATE_REFUSED,
            f"version {version} was refused; move the alias or set the "
            f"{RETRY_ANNOTATION} annotation to test it again",
        )
        prev = find(llm.status.conditions, ConditionType.LOAD_TEST_PASSED)
        w.condition(
            ConditionType.LOAD_TEST_PASSED,
            F,
            Reason.LOAD_TEST_FAILED,
            prev.message
            if prev and prev.reason == Reason.LOAD_TEST_FAILED
            else f"version {version} was refused by the load-test gate",
        )
        return None
    if is_withdrawn(w, version):
        w.condition(
            ConditionType.CANDIDATE_READY,
            F,
            Reason.CANDIDATE_WITHDRAWN,
            f"production was rolled back from version {version}; it is not promoted again "
            f"until the {RETRY_ANNOTATION} annotation changes (a new version behind alias "
            f"{llm.spec.rollout.candidate_alias!r} is tested as usual)",
        )
        w.condition(
            ConditionType.LOAD_TEST_PASSED,
            U,
            Reason.NO_CANDIDATE,
            f"nothing to test: version {version} was withdrawn",
        )
        return None

    dep_name = deployment_name(llm.name, version)
    dep = w.observed.deployments.get(dep_name)
    cand = CandidateStatus(
        version=version,
        deployment=dep_name,
        state=CandidateState.STARTING,
        since=(
            llm.status.candidate.since
            if llm.status.candidate and llm.status.candidate.version == version
            else stamp(w.now)
        ),
    )
    w.status.candidate = cand
    w.want(build_serving_deployment(llm, version, w.config, replicas=initial_replicas(w)))
    w.want(build_candidate_service(llm, version, w.config))
    w.want(build_prompts_configmap(llm))
    if cand.since == stamp(w.now) and (
        llm.status.candidate is None or llm.status.candidate.version != version
    ):
        w.event(
            EventType.NORMAL,
            EventReason.CANDIDATE_DEPLOYING,
            f"deploying version {version} as {dep_name}",
        )

    if dep is None or not dep.available:
        problem = dep.pod_problem if dep else None
        if dep is not None and (dep.progress_deadline_exceeded or problem):
            figures = LoadTestFigures(
                verdict=LoadTestVerdict.ERROR,
                reasons=[
                    f"candidate never became ready: {problem or 'progress deadline exceeded'}"
                ],
            )
            _refuse(w, version, token, figures, dep_name)
            return None
        w.condition(
            ConditionType.CANDIDATE_READY,
            F,
            Reason.CANDIDATE_STARTING,
            f"waiting for {dep_name} to become ready",
        )
        w.condition(
            ConditionType.LOAD_TEST_PASSED,
            U,
            Reason.LOAD_TEST_PENDING,
            "the candidate is not ready yet",
        )
        w.out.wait()
        return None
    w.condition(
        ConditionType.CANDIDATE_READY,
        T,
        Reason.CANDIDATE_AVAILABLE,
        f"{dep_name} has {dep.available_replicas} available replica(s)",
    )
    target = _service_url(w, candidate_service_name(llm.name))
    job_name = loadtest_job_name(llm.name, version) + (f"-{token}" if token else "")
    cand.load_test_job = job_name
    job = w.observed.jobs.get(job_name)
    if job is None:
        if target is None:
            w.condition(
                ConditionType.LOAD_TEST_PASSED,
                U,
                Reason.LOAD_TEST_PENDING,
                "waiting for the candidate Service",
            )
            w.out.wait()
            return None
        baseline = None
        prod_dep = w.observed.deployments.get(deployment_name(llm.name, production or ""))
        if production and prod_dep is not None and prod_dep.available:
            baseline = _service_url(w, production_service_name(llm.name))
        manifest = build_loadtest_job(llm, version, target, baseline, w.config)
        manifest["metadata"]["name"] = job_name
        w.want(manifest)
        cand.state = CandidateState.LOAD_TESTING
        w.condition(
            ConditionType.LOAD_TEST_PASSED, U, Reason.LOAD_TEST_RUNNING, f"started Job {job_name}"
        )
        w.event(
            EventType.NORMAL,
            EventReason.LOAD_TEST_STARTED,
            f"load-testing version {version} with Job {job_name}",
        )
        w.out.wait()
        return None
    w.desired_names.add(("Job", job_name))
    if not job.finished:
        cand.state = CandidateState.LOAD_TESTING
        w.condition(
            ConditionType.LOAD_TEST_PASSED,
            U,
            Reason.LOAD_TEST_RUNNING,
            f"Job {job_name} is running",
        )
        w.out.wait()
        return None
    figures = parse_loadtest_message(job.message, 0 if job.complete else (job.exit_code or 1))
    if job.complete and figures.verdict is LoadTestVerdict.PASS:
        cand.state = CandidateState.PASSED
        cand.load_test = figures
        w.status.last_p95_ms = figures.p95_ms
        w.condition(
            ConditionType.LOAD_TEST_PASSED,
            T,
            Reason.LOAD_TEST_PASSED,
            f"version {version}: p95 {figures.p95_ms} ms, "
            f"{figures.requests_per_second} req/s, error rate {figures.error_rate}",
        )
        rollout = llm.spec.rollout
        tags = _figure_tags(figures, ReleaseVerdict.PROMOTED, token)
        tags.update(promotion_tags(llm, version, w.config.promotion_key))
        w.out.registry.append(RegistryAction("set_tags", version, tags=tags))
        w.out.registry.append(RegistryAction("set_alias", version, alias=rollout.production_alias))
        w.event(
            EventType.NORMAL,
            EventReason.PROMOTED,
            f"version {version} passed the load test and takes traffic (p95 {figures.p95_ms} ms)",
        )
        _add_history(w, _release(version, ReleaseVerdict.PROMOTED, figures, w.now))
        record_promotion(w, version)
        return version
    _refuse(w, version, token, figures, dep_name)
    return None


def _refuse(w: Work, version: str, token: str, figures: LoadTestFigures, dep_name: str) -> None:
    llm = w.llm
    reasons = "; ".join(figures.reasons) or "the load test failed"
    w.status.candidate = CandidateStatus(
        version=version,
        deployment=dep_name,
        state=CandidateState.REFUSED,
        load_test=figures,
        since=stamp(w.now),
    )
    if figures.p95_ms is not None:
        w.status.last_p95_ms = figures.p95_ms
    w.condition(
        ConditionType.CANDIDATE_READY, F, Reason.CANDIDATE_REFUSED, f"version {version} refused"
    )
    w.condition(
        ConditionType.LOAD_TEST_PASSED, F, Reason.LOAD_TEST_FAILED, f"version {version}: {reasons}"
    )
    w.out.registry.append(
        RegistryAction(
            "set_tags", version, tags=_figure_tags(figures, ReleaseVerdict.REFUSED, token)
        )
    )
    w.event(
        EventType.WARNING,
        EventReason.REFUSED,
        f"version {version} failed the load-test gate: {reasons}",
    )
    refused = [r for r in llm.status.refused_versions if r != token_key(version, token)]
    w.status.refused_versions = [*refused, token_key(version, token)][-HISTORY_LIMIT:]
    _add_history(w, _release(version, ReleaseVerdict.REFUSED, figures, w.now))
    if llm.spec.rollout.on_failure is OnFailure.ROLLBACK:
        # not desired any more: the deletion pass removes the Deployment and its Service
        w.desired_names.discard(("Deployment", dep_name))
        w.desired_names.discard(("Service", candidate_service_name(llm.name)))
        w.out.apply = [
            m for m in w.out.apply if (m["kind"], m["metadata"]["name"]) in w.desired_names
        ]


def _add_history(w: Work, release: Release) -> None:
    history = [
        release,
        *(
            r
            for r in w.status.history
            if not (r.version == release.version and r.verdict == release.verdict)
        ),
    ]
    w.status.history = history[:HISTORY_LIMIT]


def plan_production(w: Work, production: str | None, promoted_now: bool) -> None:
    llm = w.llm
    if production is None:
        w.condition(
            ConditionType.READY,
            F,
            Reason.NO_PRODUCTION_VERSION,
            f"no version behind alias {llm.spec.rollout.production_alias!r} yet",
        )
        return
    dep_name = deployment_name(llm.name, production)
    dep = w.observed.deployments.get(dep_name)
    if ("Deployment", dep_name) not in w.desired_names:
        w.want(build_serving_deployment(llm, production, w.config, replicas=initial_replicas(w)))
    svc_name = production_service_name(llm.name)
    svc = w.observed.services.get(svc_name)
    serving = production
    if (dep is None or not dep.available) and svc is not None and svc.version != production:
        running = w.observed.deployments.get(deployment_name(llm.name, svc.version or ""))
        if running is not None and running.available:
            # A rollback to a retired release: it starts again first; until it is available
            # the Service stays on the release that serves now (no window without pods).
            serving = running.version or production
    w.want(build_production_service(llm, serving, w.config))
    scaled_to_zero = plan_serving(w, production, serving)
    prev = llm.status.production
    promoted_at = (
        stamp(w.now)
        if promoted_now or prev is None or prev.version != production
        else prev.promoted_at
    )
    w.status.production = ProductionStatus(
        version=production,
        deployment=dep_name,
        endpoint=f"http://{svc_name}.{llm.namespace}.svc:{w.config.serving_port}",
        address=_service_url(w, svc_name),
        promoted_at=promoted_at,
    )
    if dep is not None and dep.available and svc is not None and svc.version == production:
        w.condition(
            ConditionType.READY,
            T,
            Reason.PRODUCTION_SERVING,
            f"version {production} serves at {svc_name} "
            f"({dep.available_replicas} available replica(s))",
        )
    elif scaled_to_zero and svc is not None and svc.version == production:
        w.condition(
            ConditionType.READY,
            T,
            Reason.SCALED_TO_ZERO,
            f"version {production} is scaled to zero; the gateway holds requests while a "
            "replica starts",
        )
    else:
        meanwhile = f"; version {serving} serves meanwhile" if serving != production else ""
        w.condition(
            ConditionType.READY,
            F,
            Reason.PRODUCTION_STARTING,
            f"version {production}: waiting for {dep_name} and Service {svc_name}{meanwhile}",
        )
        w.out.wait()


def plan_deletions(w: Work, production: str | None) -> None:
    """Remove children nothing wants any more; retire old releases only after draining."""
    prod_svc = w.observed.services.get(production_service_name(w.llm.name))
    promoted_at = w.status.production.promoted_at if w.status.production else None
    drained = seconds_since(promoted_at, w.now) >= w.config.drain_delay
    refused = {r.split("@")[0] for r in w.status.refused_versions}
    for dep in w.observed.deployments.values():
        if ("Deployment", dep.name) in w.desired_names or dep.deleting:
            continue
        if prod_svc is not None and prod_svc.version == dep.version:
            continue  # still behind the production Service: switch first, then retire
        if dep.version not in refused and not drained:
            w.out.wait(1.0)  # let clients and proxies move to the new release first
            continue
        w.out.delete.append(Deletion("Deployment", dep.name))
        w.event(EventType.NORMAL, EventReason.RETIRED, f"deleted Deployment {dep.name}")
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
