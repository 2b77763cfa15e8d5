"""`spec.rollout`: how a candidate version becomes production (aliases, load test, SLOs,
strategy).

The gate every release passes: the load test's shape, the objectives its figures are
judged against, and what happens to a candidate that fails them. With ``strategy: Canary``
a candidate that passed the load test then takes a growing share of the live traffic
(``canary.steps``), each step judged on the candidate's live figures against the same
objectives and against production over the same window. With ``postPromotion`` the
release production left stays warm for a window after each promotion, while production's
live figures are judged; a breach rolls back to it by itself.
"""

from __future__ import annotations

import itertools
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from kubellm.api.spec.fields import (
    DECIMAL_PATTERN,
    RATIO_PATTERN,
    Duration,
    SpecModel,
    cel,
    duration_seconds,
)

__all__ = [
    "CanarySpec",
    "CanaryStep",
    "EvaluationConfigMap",
    "EvaluationSpec",
    "LoadTestSpec",
    "MatchMode",
    "OnFailure",
    "PostPromotionSpec",
    "RolloutSpec",
    "SloSpec",
    "Strategy",
]


class OnFailure(StrEnum):
    ROLLBACK = "Rollback"
    KEEP = "KeepCandidate"


class Strategy(StrEnum):
    #: the candidate takes all traffic at once after the load test
    BLUE_GREEN = "BlueGreen"
    #: then a growing share of live traffic, step by step (``canary``)
    CANARY = "Canary"


#: the longest pause of one canary step (the gateways keep two hours of figures)
MAX_PAUSE = "1h"
#: bounds of how often a step is judged during its pause
MAX_INTERVAL = "5m"
#: how often live figures are judged unless the spec says otherwise (canary, watch)
DEFAULT_INTERVAL = "10s"
#: the longest post-promotion watch (the previous release is kept warm meanwhile)
MAX_WINDOW = "24h"


class SloSpec(SpecModel):
    p95_latency_ms: int | None = Field(
        default=None, ge=1, description="Highest accepted p95 end-to-end latency (ms)."
    )
    p95_time_to_first_token_ms: int | None = Field(
        default=None, ge=1, description="Highest accepted p95 time to first token (ms)."
    )
    max_error_rate: str = Field(
        default="0.01",
        pattern=RATIO_PATTERN,
        description="Highest accepted fraction of failed requests, as a decimal string.",
    )
    min_requests_per_second: str | None = Field(
        default=None, pattern=DECIMAL_PATTERN, description="Lowest accepted throughput."
    )
    min_tokens_per_second: str | None = Field(
        default=None, pattern=DECIMAL_PATTERN, description="Lowest accepted tokens/s."
    )
    max_latency_regression_percent: int | None = Field(
        default=None,
        ge=0,
        le=10_000,
        description="Highest accepted p95 slow-down against production, in percent.",
    )


class LoadTestSpec(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "duration(self.duration) > duration('0s')",
                    "must be longer than zero",
                    ".duration",
                ),
                cel(
                    "duration(self.warmup) < duration(self.duration)",
                    "must be shorter than duration",
                    ".warmup",
                ),
            ]
        }
    )

    users: int = Field(default=4, ge=1, le=10_000, description="Concurrent simulated users.")
    spawn_rate: int = Field(default=4, ge=1, le=10_000, description="Users started per second.")
    duration: Duration = Field(default="20s", description='Measured duration, e.g. "60s".')
    warmup: Duration = Field(default="3s", description="Warm-up excluded from the figures.")
    workers: int = Field(
        default=0, ge=0, le=64, description="Locust worker processes (0: single process)."
    )
    max_tokens: int = Field(default=32, ge=1, le=131_072, description="max_tokens per request.")
    prompts: list[Annotated[str, Field(min_length=1, max_length=8192)]] = Field(
        default_factory=list,
        max_length=1000,
        description="Prompts to send; empty uses a built-in set.",
    )
    slo: SloSpec = Field(default_factory=SloSpec, description="Objectives a release must meet.")

    @model_validator(mode="after")
    def _warmup_shorter_than_duration(self) -> LoadTestSpec:
        if duration_seconds(self.duration) <= 0:
            raise ValueError(f"duration: must be longer than zero (got {self.duration!r})")
        if duration_seconds(self.warmup) >= duration_seconds(self.duration):
            raise ValueError(
                f"warmup: must be shorter than duration ({self.warmup} >= {self.duration})"
            )
        return self


class CanaryStep(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"duration(self.pause) > duration('0s') && "
                    f"duration(self.pause) <= duration('{MAX_PAUSE}')",
                    f"must be longer than zero and at most {MAX_PAUSE}",
                    ".pause",
                ),
            ]
        }
    )

    weight: int = Field(
        ge=1, le=100, description="Percent of the LLM's requests the candidate takes in this step."
    )
    pause: Duration = Field(
        description='How long the step lasts before it is judged passed, e.g. "2m" (at most 1h).'
    )

    @model_validator(mode="after")
    def _pause_bounded(self) -> CanaryStep:
        seconds = duration_seconds(self.pause)
        if not 0 < seconds <= duration_seconds(MAX_PAUSE):
            raise ValueError(
                f"pause: must be longer than zero and at most {MAX_PAUSE} (got {self.pause!r})"
            )
        return self


_INCREASING = (
    "[1, 2, 3, 4, 5, 6, 7, 8, 9].all(i, i >= size(self.steps) || "
    "self.steps[i - 1].weight < self.steps[i].weight)"
)


class CanarySpec(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(_INCREASING, "weights must increase from step to step", ".steps"),
                cel(
                    f"duration(self.interval) > duration('0s') && "
                    f"duration(self.interval) <= duration('{MAX_INTERVAL}')",
                    f"must be longer than zero and at most {MAX_INTERVAL}",
                    ".interval",
                ),
            ]
        }
    )

    steps: list[CanaryStep] = Field(
        min_length=1,
        max_length=10,
        description=(
            "The candidate's share of live traffic, step by step (weights increasing); after "
            "the last step passes it is promoted."
        ),
    )
    min_requests: int = Field(
        default=20,
        ge=1,
        le=1_000_000,
        description=(
            "Fewest candidate requests a step needs to be judged; a step that ends with fewer "
            "fails (fail closed)."
        ),
    )
    interval: Duration = Field(
        default=DEFAULT_INTERVAL,
        description=(
            "How often a step's live figures are judged during its pause; a breach returns "
            "all traffic to production within one interval (at most 5m)."
        ),
    )

    @model_validator(mode="after")
    def _steps_and_interval(self) -> CanarySpec:
        weights = [s.weight for s in self.steps]
        if any(b <= a for a, b in itertools.pairwise(weights)):
            raise ValueError(f"steps: weights must increase from step to step (got {weights})")
        if not 0 < duration_seconds(self.interval) <= duration_seconds(MAX_INTERVAL):
            raise ValueError(
                f"interval: must be longer than zero and at most {MAX_INTERVAL} "
                f"(got {self.interval!r})"
            )
        return self


class PostPromotionSpec(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"duration(self.window) > duration('0s') && "
                    f"duration(self.window) <= duration('{MAX_WINDOW}')",
                    f"must be longer than zero and at most {MAX_WINDOW}",
                    ".window",
                ),
                cel(
                    f"duration(self.interval) > duration('0s') && "
                    f"duration(self.interval) <= duration('{MAX_INTERVAL}')",
                    f"must be longer than zero and at most {MAX_INTERVAL}",
                    ".interval",
                ),
            ]
        }
    )

    window: Duration = Field(
        default="10m",
        description=(
            "How long after a promotion production's live figures are watched; the previous "
            "release stays warm at its minimum replicas meanwhile and retires after it "
            "(at most 24h)."
        ),
    )
    interval: Duration = Field(
        default=DEFAULT_INTERVAL,
        description=(
            "How often production's live figures are judged during the window; a breach of "
            "loadTest.slo rolls production back to the previous release (at most 5m)."
        ),
    )
    min_requests: int = Field(
        default=20,
        ge=1,
        le=1_000_000,
        description=(
            "Fewest production requests a look needs to judge; with fewer the watch goes on "
            "(too little traffic is not a breach)."
        ),
    )

    @model_validator(mode="after")
    def _window_and_interval(self) -> PostPromotionSpec:
        if not 0 < duration_seconds(self.window) <= duration_seconds(MAX_WINDOW):
            raise ValueError(
                f"window: must be longer than zero and at most {MAX_WINDOW} (got {self.window!r})"
            )
        if not 0 < duration_seconds(self.interval) <= duration_seconds(MAX_INTERVAL):
            raise ValueError(
                f"interval: must be longer than zero and at most {MAX_INTERVAL} "
                f"(got {self.interval!r})"
            )
        return self


class MatchMode(StrEnum):
    #: the answer's first non-blank line equals the reference (whitespace collapsed)
    EXACT = "exact"
    #: the reference occurs in the answer (whitespace collapsed)
    CONTAINS = "contains"


class EvaluationConfigMap(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self.key != '.' && self.key != '..'", "must not be . or ..", ".key")
            ]
        }
    )

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="ConfigMap in the LLM's namespace holding the evaluation set.",
    )
    key: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="Its key: JSON lines or a YAML list of {prompt, reference?}.",
    )

    @model_validator(mode="after")
    def _key_is_a_file_name(self) -> EvaluationConfigMap:
        if self.key in (".", ".."):
            raise ValueError("key: must not be . or ..")
        return self


class EvaluationSpec(SpecModel):
    """The quality gate: the load-test Job scores the candidate and production on a set of
    prompts through the OpenAI API (perplexity; match rate where references exist)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.configMap) != has(self.uri)",
                    "exactly one of configMap and uri",
                    ".configMap",
                ),
            ]
        }
    )

    config_map: EvaluationConfigMap | None = Field(
        default=None, description="The evaluation set in a ConfigMap (mounted read-only)."
    )
    uri: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description=(
            "Or the evaluation set as a dataset URI like training's: a path or file:// in "
            "the load-test pod, or s3://bucket/key (one .jsonl or .yaml object)."
        ),
    )
    max_prompts: int = Field(
        default=100, ge=1, le=1000, description="Prompts of the set used at most (the first)."
    )
    max_tokens: int = Field(
        default=32, ge=1, le=1024, description="max_tokens of each greedy answer to a reference."
    )
    max_perplexity_regression_percent: int | None = Field(
        default=None,
        ge=0,
        le=10_000,
        description=(
            "Highest accepted perplexity increase over production's, in percent (not judged "
            "for a first version: nothing in production to compare with)."
        ),
    )
    min_match_rate: str | None = Field(
        default=None,
        pattern=RATIO_PATTERN,
        description="Lowest accepted share of answers matching their reference (decimal string).",
    )
    match: MatchMode = Field(
        default=MatchMode.EXACT,
        description="exact: first line equals the reference; contains: reference in the answer.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> EvaluationSpec:
        if (self.config_map is None) == (self.uri is None):
            raise ValueError("configMap: exactly one of configMap and uri")
        return self


class RolloutSpec(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.candidateAlias != self.productionAlias",
                    "productionAlias must differ from candidateAlias",
                    ".productionAlias",
                ),
                cel(
                    "self.strategy != 'Canary' || has(self.canary)",
                    "required when strategy is Canary",
                    ".canary",
                ),
                cel(
                    "self.strategy == 'Canary' || !has(self.canary)",
                    "only with strategy Canary",
                    ".canary",
                ),
            ]
        }
    )

    candidate_alias: str = Field(
        default="candidate",
        pattern=r"^[A-Za-z][A-Za-z0-9_-]*$",
        max_length=64,
        description="Registry alias that marks the version to test next.",
    )
    production_alias: str = Field(
        default="production",
        pattern=r"^[A-Za-z][A-Za-z0-9_-]*$",
        max_length=64,
        description="Registry alias that the operator moves to each promoted version.",
    )
    load_test: LoadTestSpec = Field(
        default_factory=LoadTestSpec, description="The gate every release passes."
    )
    on_failure: OnFailure = Field(
        default=OnFailure.ROLLBACK,
        description="Rollback: remove a failed candidate; KeepCandidate: leave it for debugging.",
    )
    strategy: Strategy = Field(
        default=Strategy.BLUE_GREEN,
        description=(
            "BlueGreen: a candidate that passed the load test takes all traffic at once; "
            "Canary: it then takes the shares of canary.steps, each judged on live traffic "
            "through the gateway."
        ),
    )
    canary: CanarySpec | None = Field(
        default=None, description="The canary's steps (only with strategy Canary)."
    )
    post_promotion: PostPromotionSpec | None = Field(
        default=None,
        description=(
            "Watch production's live figures through the gateway for a window after each "
            "promotion and roll back to the previous release by itself on a breach (absent: "
            "the previous release retires at once)."
        ),
    )
    evaluation: EvaluationSpec | None = Field(
        default=None,
        description=(
            "Quality gate: an evaluation set both releases are scored on by the load-test "
            "Job, and the objectives of those scores."
        ),
    )

    @model_validator(mode="after")
    def _aliases_differ(self) -> RolloutSpec:
        if self.candidate_alias == self.production_alias:
            raise ValueError("productionAlias: must differ from candidateAlias")
        if self.strategy is Strategy.CANARY and self.canary is None:
            raise ValueError("canary: required when strategy is Canary")
        if self.strategy is not Strategy.CANARY and self.canary is not None:
            raise ValueError("canary: only with strategy Canary")
        return self
