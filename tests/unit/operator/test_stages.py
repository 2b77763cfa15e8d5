"""The rollout's stage is read once from observation, and each stage plans its own part:
no stage filters what another added."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubellm.api import LLM
from kubellm.api.vocabulary import CandidateState, Phase
from kubellm.operator.observed import DeploymentState, JobState, Observed, RegistryState
from kubellm.operator.planning import Plan, plan
from kubellm.operator.planning.stages import CANDIDATE_STATE, PHASE, Stage, read_rollout
from kubellm.operator.planning.work import StatusDraft, Work
from tests.unit.operator.test_plan import (
    CONFIG,
    FAIL,
    NOW,
    PASS,
    _candidate_ready,
    _kinds,
    _llm,
    _verified,
    _with_loadtest,
)


def _stage(llm: LLM, observed: Observed) -> Stage:
    w = Work(llm, observed, CONFIG, datetime.now(UTC), Plan(), status=StatusDraft())
    production = llm.status.production.version if llm.status.production else None
    return read_rollout(w, production).stage


def _loadtest(message: str | None, *, done: bool = True, exit_code: int = 0) -> JobState:
    return JobState(
        name="support-bot-loadtest-v2",
        component="loadtest",
        version="2",
        active=0 if done else 1,
        complete=done and exit_code == 0,
        failed_final=done and exit_code != 0,
        message=message,
        exit_code=exit_code if done else None,
    )


def test_each_observation_reads_as_its_stage() -> None:
    llm = _llm()
    ready = _candidate_ready(llm)
    assert _stage(llm, Observed()) is Stage.NO_CANDIDATE
    assert _stage(llm, Observed(registry=RegistryState(candidate="2"))) is Stage.STARTING
    assert _stage(llm, ready) is Stage.LOAD_TEST_STARTING
    assert _stage(llm, _with_loadtest(ready, _loadtest(None, done=False))) is Stage.LOAD_TESTING
    assert _stage(llm, _with_loadtest(ready, _loadtest(PASS))) is Stage.PASSED
    assert _stage(llm, _with_loadtest(ready, _loadtest(FAIL, exit_code=1))) is Stage.FAILED
    # a failed Job's message cannot pass it, whatever it says
    assert _stage(llm, _with_loadtest(ready, _loadtest(PASS, exit_code=1))) is Stage.FAILED
    stuck = DeploymentState(name="support-bot-v2", version="2", pod_problem="CrashLoopBackOff")
    observed = Observed(deployments={stuck.name: stuck}, registry=RegistryState(candidate="2"))
    assert _stage(llm, observed) is Stage.STUCK
    refused = _llm(status={"refusedVersions": ["2"]})
    assert _stage(refused, ready) is Stage.REFUSED_EARLIER
    in_production = _llm(status=_verified("2"))
    assert _stage(in_production, ready) is Stage.NO_CANDIDATE


def test_a_stage_that_deploys_the_candidate_says_its_state_and_only_those_set_a_phase() -> None:
    deploying = {
        Stage.STARTING,
        Stage.STUCK,
        Stage.AWAITING_SERVICE,
        Stage.LOAD_TEST_STARTING,
        Stage.LOAD_TESTING,
        Stage.PASSED,
        Stage.FAILED,
        Stage.CANARY,
        Stage.CANARY_STEP_PASSED,
        Stage.CANARY_FAILED,
    }
    assert set(CANDIDATE_STATE) == deploying
    assert set(PHASE) <= deploying
    assert CANDIDATE_STATE[Stage.FAILED] is CandidateState.REFUSED
    assert PHASE[Stage.PASSED] is Phase.PROMOTING


@pytest.mark.parametrize(("on_failure", "kept"), [("Rollback", False), ("KeepCandidate", True)])
def test_a_refused_candidate_is_never_planned_then_filtered_out(
    on_failure: str, kept: bool
) -> None:
    llm = _llm(
        status=_verified("1"),
        mutate=lambda o: o["spec"]["rollout"].update(onFailure=on_failure),
    )
    ready = _candidate_ready(llm, production="1")
    p: Plan = plan(llm, _with_loadtest(ready, _loadtest(FAIL, exit_code=1)), CONFIG, NOW)
    assert (("Deployment", "support-bot-v2") in _kinds(p)) is kept
    assert (("Service", "support-bot-candidate") in _kinds(p)) is kept
    assert ("Deployment", "support-bot-v1") in _kinds(p)  # production keeps serving
    assert len(_kinds(p)) == len(set(_kinds(p)))  # no child planned twice


def test_a_promoted_candidate_is_planned_once_as_production() -> None:
    llm = _llm(status=_verified("1"))
    ready = _candidate_ready(llm, production="1")
    p = plan(llm, _with_loadtest(ready, _loadtest(PASS)), CONFIG, NOW)
    assert p.status.phase is Phase.PROMOTING
    assert _kinds(p).count(("Deployment", "support-bot-v2")) == 1
    assert len(_kinds(p)) == len(set(_kinds(p)))
    assert p.status.production is not None and p.status.production.version == "2"
