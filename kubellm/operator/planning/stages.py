"""The rollout's stage: where the candidate stands, read from observation once per pass.

The candidate is the version behind the candidate alias. Every decision about it (which
children it needs, which conditions and Events it reports, whether it is promoted or
refused) follows from one value computed here, `Stage`, and `rollout.plan_rollout` matches
on it with one small function per stage. A new stage is a member here, the observation
that leads to it in `read_rollout`, its rows in the two tables below, and its function in
`rollout`.

``production`` is always the version this operator verified (`trust`), never the
registry alias as such, so a reconcile after a crash at any point reads the same stage.

With ``spec.rollout.strategy: Canary`` a candidate that passed its load test is not
promoted at once: it takes the first step's share of live traffic (CANARY), each step is
judged on the gateways' figures since the step's start (`analysis`), a passed step starts
the next (CANARY_STEP_PASSED), the last one passed promotes (PASSED), a failed one refuses
(CANARY_FAILED). The step and its start live in ``status.candidate.canary``, so a restarted
operator reads the same step and window. A first version (nothing in production yet) has no
live traffic to share and is promoted on its load test.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from kubellm.api.spec import CanarySpec, OnFailure, Strategy, duration_seconds
from kubellm.api.status import CanaryStatus, CanaryStepStatus, LoadTestFigures
from kubellm.api.timestamps import parse_time
from kubellm.api.vocabulary import CandidateState, LoadTestVerdict, Phase, ReleaseVerdict
from kubellm.loadtests.slo import parse_slo
from kubellm.operator.builders import slo_argument
from kubellm.operator.naming import (
    candidate_service_name,
    deployment_name,
    loadtest_job_name,
)
from kubellm.operator.planning.analysis import StepJudgement, StepOutcome, judge_step
from kubellm.operator.planning.trust import is_withdrawn, retry_token, token_key
from kubellm.operator.planning.work import TOKEN_TAG, VERDICT_TAG, Work, stamp
from kubellm.operator.verdicts import parse_loadtest_message

__all__ = ["Rollout", "Stage", "read_rollout"]


class Stage(StrEnum):
    #: no version behind the candidate alias, or the one in production
    NO_CANDIDATE = "NoCandidate"
    #: refused by the gate earlier; tested again only after a new trigger
    REFUSED_EARLIER = "RefusedEarlier"
    #: production was rolled back from it; not promoted again until a new trigger
    WITHDRAWN = "Withdrawn"
    #: its Deployment is not available yet
    STARTING = "Starting"
    #: its pods never became ready (crash loop, image pull, progress deadline): refused now
    STUCK = "Stuck"
    #: available, but its Service has no cluster IP to test yet
    AWAITING_SERVICE = "AwaitingService"
    #: available and addressable: its load-test Job starts now
    LOAD_TEST_STARTING = "LoadTestStarting"
    #: its load-test Job runs
    LOAD_TESTING = "LoadTesting"
    #: it passed the gate (its load test, and under Canary the last step): promoted now
    PASSED = "Passed"
    #: its load-test Job failed: refused now
    FAILED = "Failed"
    #: passed its load test (strategy Canary): takes a step's share of live traffic
    CANARY = "Canary"
    #: a step's pause ended within the objectives: the next step starts now
    CANARY_STEP_PASSED = "CanaryStepPassed"
    #: a step breached an objective, or ended with too few requests: refused now
    CANARY_FAILED = "CanaryFailed"


#: the candidate's ``status.candidate.state`` in each stage that deploys it
CANDIDATE_STATE = {
    Stage.STARTING: CandidateState.STARTING,
    Stage.AWAITING_SERVICE: CandidateState.STARTING,
    Stage.LOAD_TEST_STARTING: CandidateState.LOAD_TESTING,
    Stage.LOAD_TESTING: CandidateState.LOAD_TESTING,
    Stage.PASSED: CandidateState.PASSED,
    Stage.STUCK: CandidateState.REFUSED,
    Stage.FAILED: CandidateState.REFUSED,
    Stage.CANARY: CandidateState.CANARY,
    Stage.CANARY_STEP_PASSED: CandidateState.CANARY,
    Stage.CANARY_FAILED: CandidateState.REFUSED,
}

#: the LLM's phase while the rollout is in a stage (others: from training and production)
PHASE = {
    Stage.STARTING: Phase.DEPLOYING,
    Stage.AWAITING_SERVICE: Phase.DEPLOYING,
    Stage.LOAD_TEST_STARTING: Phase.LOAD_TESTING,
    Stage.LOAD_TESTING: Phase.LOAD_TESTING,
    Stage.PASSED: Phase.PROMOTING,
    Stage.CANARY: Phase.CANARY,
    Stage.CANARY_STEP_PASSED: Phase.CANARY,
}

_REFUSED_NOW = frozenset({Stage.STUCK, Stage.FAILED, Stage.CANARY_FAILED})
#: stages in which the candidate takes a share of the live traffic after this pass
_CANARY_TRAFFIC = frozenset({Stage.CANARY, Stage.CANARY_STEP_PASSED})


@dataclass(frozen=True)
class Rollout:
    """The stage and what was read to reach it."""

    stage: Stage
    #: the candidate version (None: no version behind the alias)
    version: str | None
    #: the verified production version before this pass
    production: str | None
    #: short hash of the retry annotation ("" without one)
    token: str
    #: the candidate's Deployment, in stages that deploy it or keep it (REFUSED_EARLIER)
    deployment: str | None = None
    #: its load-test Job, once it is available
    job: str | None = None
    #: the gate's figures, in stages that judged it (STUCK, PASSED, FAILED)
    figures: LoadTestFigures | None = None
    #: what ``spec.rollout.onFailure`` says about a refused candidate's Deployment
    keep_refused: bool = True
    #: the canary's status after this pass (strategy Canary, once the load test passed)
    canary: CanaryStatus | None = None
    #: the judgement of the step in progress, in canary stages that judged one
    judgement: StepJudgement | None = None

    @property
    def candidate_state(self) -> CandidateState | None:
        return CANDIDATE_STATE.get(self.stage)

    @property
    def phase(self) -> Phase | None:
        return PHASE.get(self.stage)

    @property
    def canary_weight(self) -> int | None:
        """The candidate's share of live traffic (percent) after this pass, if any."""
        if self.stage in _CANARY_TRAFFIC and self.canary is not None:
            return self.canary.weight
        return None

    @property
    def stage_label(self) -> str | None:
        """The stage as ``kubectl get llm`` shows it, e.g. "Canary 10%"."""
        weight = self.canary_weight
        return f"Canary {weight}%" if weight is not None else None

    @property
    def promoted(self) -> str | None:
        """The version promoted in this pass, if any."""
        return self.version if self.stage is Stage.PASSED else None

    @property
    def production_after(self) -> str | None:
        """The version production serves once this pass is carried out."""
        return self.promoted or self.production

    @property
    def runs_candidate(self) -> bool:
        """Whether the candidate's Service is wanted: while it is started, tested and
        promoted, and once refused only under ``onFailure: keep``."""
        if self.stage in _REFUSED_NOW:
            return self.keep_refused
        return self.candidate_state is not None

    @property
    def owns_deployment(self) -> bool:
        """Whether the candidate's Deployment is the rollout's to want: a promoted
        candidate's Deployment is production's (`production`)."""
        return self.runs_candidate and self.stage is not Stage.PASSED


def _refused_earlier(w: Work, version: str, token: str) -> bool:
    if token_key(version, token) in w.llm.status.refused_versions:
        return True
    tags = w.observed.registry.candidate_tags
    return tags.get(VERDICT_TAG) == ReleaseVerdict.REFUSED and tags.get(TOKEN_TAG, "") == token


def read_rollout(w: Work, production: str | None) -> Rollout:
    """The candidate's stage, from the registry, the candidate's Deployment and Service,
    and its load-test Job."""
    llm = w.llm
    version = w.observed.registry.candidate
    token = retry_token(llm)
    keep = llm.spec.rollout.on_failure is not OnFailure.ROLLBACK
    if version is None or version == production:
        return Rollout(Stage.NO_CANDIDATE, version, production, token)
    if _refused_earlier(w, version, token):
        kept = deployment_name(llm.name, version)
        return Rollout(Stage.REFUSED_EARLIER, version, production, token, kept, keep_refused=keep)
    if is_withdrawn(w, version):
        return Rollout(Stage.WITHDRAWN, version, production, token)
    dep_name = deployment_name(llm.name, version)
    dep = w.observed.deployments.get(dep_name)
    if dep is None or not dep.available:
        problem = dep.pod_problem if dep else None
        if dep is not None and (dep.progress_deadline_exceeded or problem):
            figures = LoadTestFigures(
                verdict=LoadTestVerdict.ERROR,
                reasons=[
                    f"candidate never became ready: {problem or 'progress deadline exceeded'}"
                ],
            )
            return Rollout(Stage.STUCK, version, production, token, dep_name, None, figures, keep)
        return Rollout(Stage.STARTING, version, production, token, dep_name)
    job_name = loadtest_job_name(llm.name, version, token or "")
    job = w.observed.jobs.get(job_name)
    if job is None:
        addressable = w.service_url(candidate_service_name(llm.name)) is not None
        stage = Stage.LOAD_TEST_STARTING if addressable else Stage.AWAITING_SERVICE
        return Rollout(stage, version, production, token, dep_name, job_name)
    if not job.finished:
        return Rollout(Stage.LOAD_TESTING, version, production, token, dep_name, job_name)
    figures = parse_loadtest_message(job.message, 0 if job.complete else (job.exit_code or 1))
    passed = job.complete and figures.verdict is LoadTestVerdict.PASS
    stage = Stage.PASSED if passed else Stage.FAILED
    r = Rollout(stage, version, production, token, dep_name, job_name, figures, keep)
    canary = llm.spec.rollout.canary
    # with nothing in production there is no live traffic to share: the first version is
    # promoted on its load test alone
    if passed and production and llm.spec.rollout.strategy is Strategy.CANARY and canary:
        return _read_canary(w, r, canary)
    return r


def _running(step: int, weight: int, started_at: str) -> CanaryStepStatus:
    return CanaryStepStatus(step=step, weight=weight, started_at=started_at, outcome="Running")


def _step_record(
    step: int, weight: int, started_at: str, j: StepJudgement, ended_at: str | None
) -> CanaryStepStatus:
    c, p = j.candidate, j.production
    return CanaryStepStatus(
        step=step,
        weight=weight,
        started_at=started_at,
        ended_at=ended_at,
        outcome="Running" if j.outcome is StepOutcome.WAITING else str(j.outcome),
        requests=c.requests,
        error_rate=c.error_rate,
        p95_ms=c.p95_ms,
        p95_ttft_ms=c.p95_time_to_first_token_ms,
        tokens_per_second=c.tokens_per_second,
        production_requests=p.requests,
        production_error_rate=p.error_rate,
        production_p95_ms=p.p95_ms,
        production_tokens_per_second=p.tokens_per_second,
        reasons=list(j.reasons),
    )


def _read_canary(w: Work, passed: Rollout, spec: CanarySpec) -> Rollout:
    """The canary stage of a candidate that passed its load test: its step (from status,
    or the first starting now) judged on the live figures of the step's window."""
    now = stamp(w.now)
    previous = w.llm.status.candidate
    canary = (
        previous.canary if previous is not None and previous.version == passed.version else None
    )
    steps = spec.steps
    if canary is None:
        first = CanaryStatus(
            step=1,
            weight=steps[0].weight,
            step_started_at=now,
            steps=[_running(1, steps[0].weight, now)],
        )
        return replace(passed, stage=Stage.CANARY, canary=first)
    k = min(max(canary.step, 1), len(steps))  # the spec may have lost steps meanwhile
    step = steps[k - 1]
    started = parse_time(canary.step_started_at) or w.now
    pause_over = (w.now - started).total_seconds() >= duration_seconds(step.pause)
    live = w.observed.live
    if live is not None and live.since != canary.step_started_at:
        live = None  # read for another window
    releases = live.releases if live is not None else {}
    judged = judge_step(
        releases.get(passed.version or ""),
        releases.get(passed.production) if passed.production else None,
        parse_slo(slo_argument(w.llm.spec.rollout.load_test.slo), source="spec.rollout"),
        min_requests=spec.min_requests,
        pause_over=pause_over,
    )
    if judged.outcome is StepOutcome.FAILED and live is None:
        why = "no gateway answered with live figures (is the gateway installed?)"
        judged = replace(judged, reasons=(*judged.reasons, why))
    ended = None if judged.outcome is StepOutcome.WAITING else now
    done = [s for s in canary.steps if s.step < k]
    record = _step_record(k, step.weight, canary.step_started_at, judged, ended)
    if judged.outcome is StepOutcome.WAITING:
        status = CanaryStatus(
            step=k,
            weight=step.weight,
            step_started_at=canary.step_started_at,
            steps=[*done, record],
        )
        return replace(passed, stage=Stage.CANARY, canary=status, judgement=judged)
    if judged.outcome is StepOutcome.FAILED:
        status = canary.model_copy(update={"steps": [*done, record]})
        c = judged.candidate
        figures = LoadTestFigures(
            verdict=LoadTestVerdict.FAIL,
            p95_ms=c.p95_ms,
            p95_ttft_ms=c.p95_time_to_first_token_ms,
            tokens_per_second=c.tokens_per_second,
            error_rate=c.error_rate,
            requests=c.requests,
            reasons=[f"canary step {k} ({step.weight}%): {r}" for r in judged.reasons],
        )
        return replace(
            passed, stage=Stage.CANARY_FAILED, canary=status, judgement=judged, figures=figures
        )
    if k < len(steps):
        following = steps[k]
        status = CanaryStatus(
            step=k + 1,
            weight=following.weight,
            step_started_at=now,
            steps=[*done, record, _running(k + 1, following.weight, now)],
        )
        return replace(passed, stage=Stage.CANARY_STEP_PASSED, canary=status, judgement=judged)
    status = canary.model_copy(update={"steps": [*done, record]})
    return replace(passed, canary=status, judgement=judged)
