"""The rollout's stage: where the candidate stands, read from observation once per pass.

The candidate is the version behind the candidate alias. Every decision about it (which
children it needs, which conditions and Events it reports, whether it is promoted or
refused) follows from one value computed here, `Stage`, and `rollout.plan_rollout` matches
on it with one small function per stage. A new stage is a member here, the observation
that leads to it in `read_rollout`, its rows in the two tables below, and its function in
`rollout`.

``production`` is always the version this operator verified (`trust`), never the
registry alias as such, so a reconcile after a crash at any point reads the same stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kubellm.api.spec import OnFailure
from kubellm.api.status import LoadTestFigures
from kubellm.api.vocabulary import CandidateState, LoadTestVerdict, Phase, ReleaseVerdict
from kubellm.operator.naming import (
    candidate_service_name,
    deployment_name,
    loadtest_job_name,
)
from kubellm.operator.planning.trust import is_withdrawn, retry_token, token_key
from kubellm.operator.planning.work import TOKEN_TAG, VERDICT_TAG, Work
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
    #: its load-test Job passed: promoted now
    PASSED = "Passed"
    #: its load-test Job failed: refused now
    FAILED = "Failed"


#: the candidate's ``status.candidate.state`` in each stage that deploys it
CANDIDATE_STATE = {
    Stage.STARTING: CandidateState.STARTING,
    Stage.AWAITING_SERVICE: CandidateState.STARTING,
    Stage.LOAD_TEST_STARTING: CandidateState.LOAD_TESTING,
    Stage.LOAD_TESTING: CandidateState.LOAD_TESTING,
    Stage.PASSED: CandidateState.PASSED,
    Stage.STUCK: CandidateState.REFUSED,
    Stage.FAILED: CandidateState.REFUSED,
}

#: the LLM's phase while the rollout is in a stage (others: from training and production)
PHASE = {
    Stage.STARTING: Phase.DEPLOYING,
    Stage.AWAITING_SERVICE: Phase.DEPLOYING,
    Stage.LOAD_TEST_STARTING: Phase.LOAD_TESTING,
    Stage.LOAD_TESTING: Phase.LOAD_TESTING,
    Stage.PASSED: Phase.PROMOTING,
}

_REFUSED_NOW = frozenset({Stage.STUCK, Stage.FAILED})


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
    #: the candidate's Deployment, in stages that deploy it
    deployment: str | None = None
    #: its load-test Job, once it is available
    job: str | None = None
    #: the gate's figures, in stages that judged it (STUCK, PASSED, FAILED)
    figures: LoadTestFigures | None = None
    #: what ``spec.rollout.onFailure`` says about a refused candidate's Deployment
    keep_refused: bool = True

    @property
    def candidate_state(self) -> CandidateState | None:
        return CANDIDATE_STATE.get(self.stage)

    @property
    def phase(self) -> Phase | None:
        return PHASE.get(self.stage)

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
        return Rollout(Stage.REFUSED_EARLIER, version, production, token)
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
    return Rollout(stage, version, production, token, dep_name, job_name, figures, keep)
