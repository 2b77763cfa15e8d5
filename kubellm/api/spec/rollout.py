"""`spec.rollout`: how a candidate version becomes production (aliases, load test, SLOs).

The gate every release passes: the load test's shape, the objectives its figures are
judged against, and what happens to a candidate that fails them.
"""

from __future__ import annotations

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
    "LoadTestSpec",
    "OnFailure",
    "RolloutSpec",
    "SloSpec",
]


class OnFailure(StrEnum):
    ROLLBACK = "Rollback"
    KEEP = "KeepCandidate"


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


class RolloutSpec(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.candidateAlias != self.productionAlias",
                    "productionAlias must differ from candidateAlias",
                    ".productionAlias",
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

    @model_validator(mode="after")
    def _aliases_differ(self) -> RolloutSpec:
        if self.candidate_alias == self.production_alias:
            raise ValueError("productionAlias: must differ from candidateAlias")
        return self
