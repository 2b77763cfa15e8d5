"""Planning the candidate: one small function per rollout stage (`stages.Stage`).

`plan_rollout` reads the stage once and matches on it. Each stage function adds to the
plan (children, conditions CandidateReady and LoadTestPassed, Events, registry actions,
the status draft) and none edits what another added: the candidate's children are wanted
by the stages that run it (`Rollout.runs_candidate`), a promoted candidate's Deployment by
`production` (it serves now), and whatever nothing wants is retired afterwards
(`retiring`).
"""

from __future__ import annotations

from typing import assert_never

from kubellm.api.conditions import find
from kubellm.api.spec import duration_seconds
from kubellm.api.status import HISTORY_LIMIT, CandidateStatus, LoadTestFigures, Release
from kubellm.api.timestamps import parse_time
from kubellm.api.vocabulary import (
    ConditionType,
    EventReason,
    EventType,
    Reason,
    ReleaseVerdict,
)
from kubellm.operator.builders import (
    build_candidate_service,
    build_loadtest_job,
    build_prompts_configmap,
    build_serving_deployment,
)
from kubellm.operator.naming import (
    candidate_service_name,
    deployment_name,
    production_service_name,
)
from kubellm.operator.planning.plans import RegistryAction
from kubellm.operator.planning.scaling import initial_replicas
from kubellm.operator.planning.stages import Rollout, Stage, read_rollout
from kubellm.operator.planning.trust import promotion_tags, record_promotion, token_key
from kubellm.operator.planning.work import (
    RETRY_ANNOTATION,
    TOKEN_TAG,
    VERDICT_TAG,
    F,
    T,
    U,
    Work,
    stamp,
)

__all__ = ["plan_rollout"]


def plan_rollout(w: Work, production: str | None) -> Rollout:
    """Everything about the candidate in this pass; returns the stage read."""
    r = read_rollout(w, production)
    match r.stage:
        case Stage.NO_CANDIDATE:
            _no_candidate(w, r)
        case Stage.REFUSED_EARLIER:
            _refused_earlier(w, r)
        case Stage.WITHDRAWN:
            _withdrawn(w, r)
        case Stage.STARTING:
            _starting(w, r)
        case Stage.STUCK | Stage.FAILED | Stage.CANARY_FAILED:
            _refuse(w, r)
        case Stage.AWAITING_SERVICE:
            _awaiting_service(w, r)
        case Stage.LOAD_TEST_STARTING:
            _start_load_test(w, r)
        case Stage.LOAD_TESTING:
            _load_testing(w, r)
        case Stage.CANARY | Stage.CANARY_STEP_PASSED:
            _canary(w, r)
        case Stage.PASSED:
            _promote(w, r)
        case _:  # a new Stage without its function fails the type check here
            assert_never(r.stage)
    return r


# --- stages without a candidate to run -------------------------------------------------


def _no_candidate(w: Work, r: Rollout) -> None:
    alias = w.llm.spec.rollout.candidate_alias
    w.condition(
        ConditionType.CANDIDATE_READY,
        F,
        Reason.NO_CANDIDATE,
        f"no version behind alias {alias!r} awaits a test"
        if r.version is None
        else f"candidate version {r.version} is in production",
    )
    w.condition(
        ConditionType.LOAD_TEST_PASSED,
        T if r.version else U,
        Reason.PROMOTED if r.version else Reason.NO_CANDIDATE,
        f"version {r.version} passed the gate" if r.version else "nothing to test",
    )


def _refused_earlier(w: Work, r: Rollout) -> None:
    if r.keep_refused and r.deployment is not None:
        # onFailure KeepCandidate: its Deployment and Service stay for debugging (as they are)
        w.keep("Deployment", r.deployment)
        w.keep("Service", candidate_service_name(w.llm.name))
    w.condition(
        ConditionType.CANDIDATE_READY,
        F,
        Reason.CANDIDATE_REFUSED,
        f"version {r.version} was refused; move the alias or set the "
        f"{RETRY_ANNOTATION} annotation to test it again",
    )
    prev = find(w.llm.status.conditions, ConditionType.LOAD_TEST_PASSED)
    failed = (Reason.LOAD_TEST_FAILED, Reason.CANARY_FAILED)
    w.condition(
        ConditionType.LOAD_TEST_PASSED,
        F,
        Reason(prev.reason) if prev and prev.reason in failed else Reason.LOAD_TEST_FAILED,
        prev.message
        if prev and prev.reason in failed
        else f"version {r.version} was refused by the load-test gate",
    )


def _withdrawn(w: Work, r: Rollout) -> None:
    w.condition(
        ConditionType.CANDIDATE_READY,
        F,
        Reason.CANDIDATE_WITHDRAWN,
        f"production was rolled back from version {r.version}; it is not promoted again "
        f"until the {RETRY_ANNOTATION} annotation changes (a new version behind alias "
        f"{w.llm.spec.rollout.candidate_alias!r} is tested as usual)",
    )
    w.condition(
        ConditionType.LOAD_TEST_PASSED,
        U,
        Reason.NO_CANDIDATE,
        f"nothing to test: version {r.version} was withdrawn",
    )


# --- stages that run the candidate -------------------------------------------------------


def _deploy(w: Work, r: Rollout) -> CandidateStatus:
    """The candidate's children (those its stage wants) and its status section."""
    llm = w.llm
    assert r.version is not None and r.deployment is not None
    previous = llm.status.candidate
    same = previous is not None and previous.version == r.version
    since = previous.since if previous is not None and same else stamp(w.now)
    if r.owns_deployment:
        w.want(build_serving_deployment(llm, r.version, w.config, replicas=initial_replicas(w)))
    if r.runs_candidate:
        w.want(build_candidate_service(llm, r.version, w.config))
    w.want(build_prompts_configmap(llm))
    if since == stamp(w.now) and not same:
        w.event(
            EventType.NORMAL,
            EventReason.CANDIDATE_DEPLOYING,
            f"deploying version {r.version} as {r.deployment}",
        )
    cand = CandidateStatus(
        version=r.version,
        deployment=r.deployment,
        state=r.candidate_state,
        load_test_job=r.job,
        since=since,
    )
    w.status.candidate = cand
    return cand


def _available(w: Work, r: Rollout) -> None:
    dep = w.observed.deployments[r.deployment or ""]
    w.condition(
        ConditionType.CANDIDATE_READY,
        T,
        Reason.CANDIDATE_AVAILABLE,
        f"{r.deployment} has {dep.available_replicas} available replica(s)",
    )


def _starting(w: Work, r: Rollout) -> None:
    _deploy(w, r)
    w.condition(
        ConditionType.CANDIDATE_READY,
        F,
        Reason.CANDIDATE_STARTING,
        f"waiting for {r.deployment} to become ready",
    )
    w.condition(
        ConditionType.LOAD_TEST_PASSED,
        U,
        Reason.LOAD_TEST_PENDING,
        "the candidate is not ready yet",
    )
    w.out.wait()


def _awaiting_service(w: Work, r: Rollout) -> None:
    _deploy(w, r)
    _available(w, r)
    w.condition(
        ConditionType.LOAD_TEST_PASSED,
        U,
        Reason.LOAD_TEST_PENDING,
        "waiting for the candidate Service",
    )
    w.out.wait()


def _start_load_test(w: Work, r: Rollout) -> None:
    llm = w.llm
    assert r.version is not None and r.job is not None
    _deploy(w, r)
    _available(w, r)
    target = w.service_url(candidate_service_name(llm.name))
    assert target is not None  # the stage says the Service is addressable
    baseline = None
    prod_dep = w.observed.deployments.get(deployment_name(llm.name, r.production or ""))
    if r.production and prod_dep is not None and prod_dep.available:
        baseline = w.service_url(production_service_name(llm.name))
    manifest = build_loadtest_job(llm, r.version, target, baseline, w.config)
    manifest["metadata"]["name"] = r.job
    w.want(manifest)
    w.condition(ConditionType.LOAD_TEST_PASSED, U, Reason.LOAD_TEST_RUNNING, f"started Job {r.job}")
    w.event(
        EventType.NORMAL,
        EventReason.LOAD_TEST_STARTED,
        f"load-testing version {r.version} with Job {r.job}",
    )
    w.out.wait()


def _load_testing(w: Work, r: Rollout) -> None:
    _deploy(w, r)
    _available(w, r)
    w.keep("Job", r.job or "")
    w.condition(
        ConditionType.LOAD_TEST_PASSED, U, Reason.LOAD_TEST_RUNNING, f"Job {r.job} is running"
    )
    w.out.wait()


def _canary(w: Work, r: Rollout) -> None:
    """A step of the canary: the candidate takes its share (the routes, `scaling`), and the
    reconcile comes back every ``interval`` to judge it, and when its pause ends."""
    spec = w.llm.spec.rollout.canary
    assert r.canary is not None and spec is not None
    cand = _deploy(w, r)
    cand.load_test = r.figures
    cand.canary = r.canary
    _available(w, r)
    w.keep("Job", r.job or "")
    step, total = r.canary.step, len(spec.steps)
    w.condition(
        ConditionType.LOAD_TEST_PASSED,
        U,
        Reason.CANARY_RUNNING,
        f"version {r.version} passed its load test; canary step {step} of {total}: "
        f"{r.canary.weight}% of live traffic since {r.canary.step_started_at}",
    )
    if r.stage is Stage.CANARY_STEP_PASSED or (len(r.canary.steps) == 1 and r.judgement is None):
        w.event(
            EventType.NORMAL,
            EventReason.CANARY_STEP_STARTED,
            f"version {r.version}: canary step {step} of {total} sends it "
            f"{r.canary.weight}% of live traffic",
        )
    started = parse_time(r.canary.step_started_at) or w.now
    pause = duration_seconds(spec.steps[min(step, total) - 1].pause)
    remaining = pause - (w.now - started).total_seconds()
    w.out.wait(max(0.5, min(duration_seconds(spec.interval), remaining + 0.5)))


# --- verdicts ----------------------------------------------------------------------------


def _promote(w: Work, r: Rollout) -> None:
    llm = w.llm
    figures = r.figures
    assert r.version is not None and figures is not None
    cand = _deploy(w, r)
    cand.load_test = figures
    cand.canary = r.canary
    _available(w, r)
    w.keep("Job", r.job or "")
    w.status.last_p95_ms = figures.p95_ms
    w.condition(
        ConditionType.LOAD_TEST_PASSED,
        T,
        Reason.LOAD_TEST_PASSED,
        f"version {r.version}: p95 {figures.p95_ms} ms, "
        f"{figures.requests_per_second} req/s, error rate {figures.error_rate}",
    )
    tags = _figure_tags(figures, ReleaseVerdict.PROMOTED, r.token)
    tags.update(promotion_tags(llm, r.version, w.config.promotion_key))
    w.out.registry.append(RegistryAction("set_tags", r.version, tags=tags))
    alias = llm.spec.rollout.production_alias
    w.out.registry.append(RegistryAction("set_alias", r.version, alias=alias))
    passed = (
        "the load test"
        if r.canary is None
        else f"the load test and {len(r.canary.steps)} canary step(s)"
    )
    w.event(
        EventType.NORMAL,
        EventReason.PROMOTED,
        f"version {r.version} passed {passed} and takes traffic (p95 {figures.p95_ms} ms)",
    )
    _add_history(w, _release(w, r, ReleaseVerdict.PROMOTED, figures))
    w.out.verdict = ReleaseVerdict.PROMOTED
    record_promotion(w, r.version)
    w.out.wait(0.5)


def _refuse(w: Work, r: Rollout) -> None:
    """A candidate that never became ready, or failed its load test."""
    llm = w.llm
    figures = r.figures
    assert r.version is not None and figures is not None
    _deploy(w, r)
    if r.job:
        w.keep("Job", r.job)
    w.status.candidate = CandidateStatus(
        version=r.version,
        deployment=r.deployment,
        state=r.candidate_state,
        load_test=figures,
        since=stamp(w.now),
        canary=r.canary,
    )
    if figures.p95_ms is not None:
        w.status.last_p95_ms = figures.p95_ms
    reasons = "; ".join(figures.reasons) or "the load test failed"
    canary = r.stage is Stage.CANARY_FAILED
    w.condition(
        ConditionType.CANDIDATE_READY, F, Reason.CANDIDATE_REFUSED, f"version {r.version} refused"
    )
    w.condition(
        ConditionType.LOAD_TEST_PASSED,
        F,
        Reason.CANARY_FAILED if canary else Reason.LOAD_TEST_FAILED,
        f"version {r.version}: {reasons}",
    )
    tags = _figure_tags(figures, ReleaseVerdict.REFUSED, r.token)
    w.out.registry.append(RegistryAction("set_tags", r.version, tags=tags))
    gate = "its canary; all traffic is back on production" if canary else "the load-test gate"
    w.event(
        EventType.WARNING,
        EventReason.REFUSED,
        f"version {r.version} failed {gate}: {reasons}",
    )
    key = token_key(r.version, r.token)
    refused = [v for v in llm.status.refused_versions if v != key]
    w.status.refused_versions = [*refused, key][-HISTORY_LIMIT:]
    _add_history(w, _release(w, r, ReleaseVerdict.REFUSED, figures))
    w.out.verdict = ReleaseVerdict.REFUSED
    # not steady yet: the next pass (REFUSED_EARLIER) retires what the refused candidate
    # left (its prompts ConfigMap, under onFailure Keep its children) and settles its status
    w.out.wait()


def _release(w: Work, r: Rollout, verdict: ReleaseVerdict, figures: LoadTestFigures) -> Release:
    assert r.version is not None
    return Release(
        version=r.version,
        verdict=verdict,
        at=stamp(w.now),
        p95_ms=figures.p95_ms,
        requests_per_second=figures.requests_per_second,
        tokens_per_second=figures.tokens_per_second,
        error_rate=figures.error_rate,
        reasons=figures.reasons,
        canary=r.canary.steps if r.canary is not None else [],
    )


def _figure_tags(figures: LoadTestFigures, verdict: ReleaseVerdict, token: str) -> dict[str, str]:
    tags = {VERDICT_TAG: str(verdict), TOKEN_TAG: token}
    if figures.p95_ms is not None:
        tags["kubellm.rollout.p95_ms"] = f"{figures.p95_ms:g}"
    if figures.reasons:
        tags["kubellm.rollout.reasons"] = "; ".join(figures.reasons)[:4000]
    return tags


def _add_history(w: Work, release: Release) -> None:
    others = (
        r
        for r in w.status.history
        if not (r.version == release.version and r.verdict == release.verdict)
    )
    w.status.history = [release, *others][:HISTORY_LIMIT]
