"""The observed state of an LLM: what the operator writes under `status`.

Status is rebuilt from observation on every reconcile and written once, through the status
subresource. Conditions are the contract (Kubernetes API conventions); `phase` is a short
summary for printer columns.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from kubellm.api.vocabulary import (
    CandidateState,
    ConditionStatus,
    LoadTestVerdict,
    Phase,
    ReleaseVerdict,
    RollbackState,
    TrainingState,
    WatchState,
)

__all__ = [
    "HISTORY_LIMIT",
    "PROMOTED_LIMIT",
    "CanaryStatus",
    "CanaryStepStatus",
    "CandidateStatus",
    "Condition",
    "ConditionStatus",
    "LLMStatus",
    "LoadTestFigures",
    "Phase",
    "ProductionStatus",
    "Release",
    "RollbackStatus",
    "RouteStatus",
    "ServingStatus",
    "TrainingStatus",
    "WatchStatus",
]

HISTORY_LIMIT = 10
PROMOTED_LIMIT = 20


class _Status(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Condition(_Status):
    type: str = Field(description="PascalCase condition type, e.g. Ready.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase machine-readable reason.")
    message: str = Field(default="", description="Human-readable detail.")
    last_transition_time: str = Field(description="When status last changed (RFC 3339).")
    observed_generation: int | None = Field(
        default=None, description="The spec generation this condition was computed from."
    )


class TrainingStatus(_Status):
    job: str | None = Field(default=None, description="Name of the current training Job.")
    spec_hash: str | None = Field(default=None, description="Hash of the trained spec section.")
    state: TrainingState | None = Field(
        default=None, description="Pending, Running, Succeeded or Failed."
    )
    step: int | None = Field(default=None, description="Optimizer steps done.")
    total_steps: int | None = Field(default=None, description="Optimizer steps planned.")
    loss: float | None = Field(default=None, description="Latest training loss.")
    eval_loss: float | None = Field(default=None, description="Final evaluation loss.")
    run_id: str | None = Field(default=None, description="MLflow run of the training.")
    model_version: str | None = Field(default=None, description="Version it registered.")
    message: str | None = Field(default=None, description="Error or summary.")
    started_at: str | None = Field(default=None, description="When the Job started.")
    finished_at: str | None = Field(default=None, description="When the Job finished.")


class LoadTestFigures(_Status):
    verdict: LoadTestVerdict | None = Field(default=None, description="pass, fail or error.")
    p50_ms: float | None = Field(default=None, description="Median latency (ms).")
    p95_ms: float | None = Field(default=None, description="95th percentile latency (ms).")
    p99_ms: float | None = Field(default=None, description="99th percentile latency (ms).")
    p95_ttft_ms: float | None = Field(default=None, description="p95 time to first token.")
    requests_per_second: float | None = Field(default=None, description="Throughput.")
    tokens_per_second: float | None = Field(default=None, description="Generated tokens/s.")
    error_rate: float | None = Field(default=None, description="Failed fraction.")
    requests: int | None = Field(default=None, description="Requests measured.")
    perplexity: float | None = Field(
        default=None, description="Perplexity on the evaluation set (the quality gate)."
    )
    production_perplexity: float | None = Field(
        default=None, description="Production's perplexity on the same set, same Job."
    )
    match_rate: float | None = Field(
        default=None, description="Share of answers matching their reference (quality gate)."
    )
    reasons: list[str] = Field(default_factory=list, description="Violated objectives.")


class CanaryStepStatus(_Status):
    step: int = Field(description="Step number, from 1.")
    weight: int = Field(description="Percent of the requests the candidate took.")
    started_at: str = Field(description="Start of the step's window (RFC 3339).")
    ended_at: str | None = Field(default=None, description="When it was judged, if it was.")
    outcome: str = Field(description="Running, Passed or Failed.")
    requests: int = Field(default=0, description="Candidate requests in the window.")
    error_rate: float | None = Field(default=None, description="Candidate's failed fraction.")
    p95_ms: float | None = Field(default=None, description="Candidate's p95 latency (ms).")
    p95_ttft_ms: float | None = Field(
        default=None, description="Candidate's p95 time to first token (ms)."
    )
    tokens_per_second: float | None = Field(
        default=None, description="Candidate's completion tokens per second of answering."
    )
    production_requests: int = Field(default=0, description="Production requests, same window.")
    production_error_rate: float | None = Field(default=None, description="Production's.")
    production_p95_ms: float | None = Field(default=None, description="Production's p95 (ms).")
    production_tokens_per_second: float | None = Field(
        default=None, description="Production's tokens per second of answering."
    )
    reasons: list[str] = Field(default_factory=list, description="Why it failed.")


class CanaryStatus(_Status):
    step: int = Field(description="The step in progress, from 1.")
    weight: int = Field(description="Percent of the requests the candidate takes now.")
    step_started_at: str = Field(description="Start of the step's window (RFC 3339).")
    steps: list[CanaryStepStatus] = Field(
        default_factory=list, max_length=10, description="Each step's figures so far."
    )


class CandidateStatus(_Status):
    version: str | None = Field(default=None, description="Registry version under test.")
    deployment: str | None = Field(default=None, description="Its serving Deployment.")
    state: CandidateState | None = Field(
        default=None, description="Starting, LoadTesting, Passed or Refused."
    )
    load_test_job: str | None = Field(default=None, description="The load-test Job.")
    load_test: LoadTestFigures | None = Field(default=None, description="Gate figures.")
    since: str | None = Field(default=None, description="When this candidate appeared.")
    canary: CanaryStatus | None = Field(
        default=None, description="Its canary on live traffic (strategy Canary)."
    )


class WatchStatus(_Status):
    version: str = Field(description="The promoted version under watch.")
    previous: str = Field(
        description="The release production left, kept warm; a breach goes back to it."
    )
    started_at: str = Field(description="When the watch began: the promotion (RFC 3339).")
    state: WatchState = Field(description="Watching, Passed or RolledBack.")
    ended_at: str | None = Field(default=None, description="When it passed or rolled back.")
    judged_at: str | None = Field(default=None, description="The latest look at the figures.")
    since: str | None = Field(
        default=None, description="Start of the window the latest look judged (RFC 3339)."
    )
    requests: int = Field(default=0, description="Production requests in that window.")
    error_rate: float | None = Field(default=None, description="Production's failed fraction.")
    p95_ms: float | None = Field(default=None, description="Production's p95 latency (ms).")
    p95_ttft_ms: float | None = Field(
        default=None, description="Production's p95 time to first token (ms)."
    )
    tokens_per_second: float | None = Field(
        default=None, description="Production's completion tokens per second of answering."
    )
    reasons: list[str] = Field(
        default_factory=list, description="The objectives breached (a rollback), or why unjudged."
    )


class ProductionStatus(_Status):
    version: str | None = Field(default=None, description="Version taking traffic.")
    deployment: str | None = Field(default=None, description="Its serving Deployment.")
    endpoint: str | None = Field(default=None, description="In-cluster DNS URL of the Service.")
    address: str | None = Field(
        default=None, description="URL by cluster IP (also reachable from the host in localkube)."
    )
    promoted_at: str | None = Field(default=None, description="When it was promoted.")
    watch: WatchStatus | None = Field(
        default=None,
        description="The latest promotion's post-promotion watch (spec.rollout.postPromotion).",
    )


class RollbackStatus(_Status):
    request: str = Field(
        description="The kubellm.dev/rollback-to annotation value this answers (done once)."
    )
    version: str | None = Field(default=None, description="Version production went back to.")
    from_version: str | None = Field(default=None, description="Version production left.")
    state: RollbackState = Field(description="Done, or Refused (see message).")
    message: str | None = Field(default=None, description="Why a rollback was refused.")
    at: str = Field(description="When the request was handled.")


class RouteStatus(_Status):
    version: str = Field(description="Registry version of the release.")
    service: str = Field(description="Service whose ready pods serve it.")
    weight: int = Field(description="Share of the gateway's requests, out of the sum of weights.")


class ServingStatus(_Status):
    replicas: int = Field(default=0, description="Ready replicas of the production release.")
    scaled_to_zero: bool = Field(
        default=False,
        description=(
            "True while the production release has no replica by choice (idle for "
            "spec.serving.scaleToZeroAfter) or is starting again from zero."
        ),
    )
    last_cold_start_seconds: float | None = Field(
        default=None,
        description=(
            "The latest start from zero as the gateway measured it: from the first held "
            "request to its forwarding."
        ),
    )
    last_cold_start_at: str | None = Field(default=None, description="When it ended.")
    routes: list[RouteStatus] = Field(
        default_factory=list,
        description="Where the gateway sends this LLM's requests: releases and their weights.",
    )


class Release(_Status):
    version: str = Field(description="Registry version.")
    verdict: ReleaseVerdict = Field(description="promoted, refused or rolledBack.")
    at: str = Field(description="When the verdict was reached.")
    p95_ms: float | None = Field(default=None, description="p95 latency (ms).")
    requests_per_second: float | None = Field(default=None, description="Throughput.")
    tokens_per_second: float | None = Field(default=None, description="Generated tokens/s.")
    error_rate: float | None = Field(default=None, description="Failed fraction.")
    reasons: list[str] = Field(default_factory=list, description="Why it was refused.")
    canary: list[CanaryStepStatus] = Field(
        default_factory=list, max_length=10, description="Its canary steps' figures."
    )


class LLMStatus(_Status):
    phase: Phase | None = Field(default=None, description="Short summary for kubectl get.")
    stage: str | None = Field(
        default=None,
        description='Where the rollout stands, e.g. "Canary 10%", "Watching 4m/10m" (kubectl get).',
    )
    observed_generation: int | None = Field(
        default=None, description="The spec generation the status describes."
    )
    conditions: list[Condition] = Field(default_factory=list, description="The contract.")
    training: TrainingStatus | None = Field(default=None, description="Latest training.")
    candidate: CandidateStatus | None = Field(default=None, description="Release under test.")
    production: ProductionStatus | None = Field(default=None, description="Serving release.")
    serving: ServingStatus | None = Field(
        default=None, description="Replicas, scale to zero and the gateway's routes."
    )
    last_p95_ms: float | None = Field(
        default=None, description="p95 latency of the latest load test (ms)."
    )
    refused_versions: list[str] = Field(
        default_factory=list,
        description=(
            "Versions refused by the gate (VERSION or VERSION@RETRYTOKEN); not tested again "
            "until the alias moves or the kubellm.dev/retry-rollout annotation changes."
        ),
    )
    promoted_versions: list[str] = Field(
        default_factory=list,
        max_length=PROMOTED_LIMIT,
        description=(
            "Versions this operator promoted itself after a passed load test, oldest first. "
            "Only these are ever served: a production alias moved outside the operator is "
            "reported (condition ProductionAliasDrift), not followed."
        ),
    )
    withdrawn_versions: list[str] = Field(
        default_factory=list,
        max_length=HISTORY_LIMIT,
        description=(
            "Versions production was rolled back from (VERSION or VERSION@RETRYTOKEN); not "
            "promoted again, even while the candidate alias names them, until the "
            "kubellm.dev/retry-rollout annotation changes."
        ),
    )
    rollback: RollbackStatus | None = Field(
        default=None, description="The latest kubellm.dev/rollback-to request and its outcome."
    )
    message: str | None = Field(default=None, description="What the operator waits for.")
    history: list[Release] = Field(
        default_factory=list,
        max_length=HISTORY_LIMIT,
        description=f"The last {HISTORY_LIMIT} releases, newest first.",
    )

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
