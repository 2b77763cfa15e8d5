"""`spec.serving`: how released versions are served (replicas, autoscaling, engine, access).

The serving Deployment, its Service and HPA, and scale-to-zero are built from these
fields; the engine limits become the flags of `kubellm serve` (or of the vLLM image).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from kubellm.api.spec.fields import (
    DNS_LABEL_PATTERN,
    Duration,
    Quantity,
    ResourcesSpec,
    SpecModel,
    cel,
    duration_seconds,
)

__all__ = [
    "AutoscalingMetric",
    "AutoscalingSpec",
    "EngineName",
    "EngineSpec",
    "ReplicasSpec",
    "SecretKeySelector",
    "ServingSpec",
]


class EngineName(StrEnum):
    KUBELLM = "kubellm"
    VLLM = "vllm"


class AutoscalingMetric(StrEnum):
    CPU = "CPU"
    INFLIGHT_REQUESTS = "InflightRequests"


class ReplicasSpec(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self.max >= self.min", "must be >= min", ".max"),
            ]
        }
    )

    min: int = Field(
        default=1,
        ge=0,
        le=1000,
        description=(
            "Fewest serving pods. 0 scales the production release to zero after "
            "serving.scaleToZeroAfter without requests; the gateway holds requests while a "
            "replica starts again."
        ),
    )
    max: int = Field(default=1, ge=1, le=1000, description="Most serving pods.")

    @model_validator(mode="after")
    def _min_le_max(self) -> ReplicasSpec:
        if self.max < self.min:
            raise ValueError(f"max: must be >= min ({self.min} > {self.max})")
        return self


class AutoscalingSpec(SpecModel):
    metric: AutoscalingMetric = Field(
        default=AutoscalingMetric.INFLIGHT_REQUESTS,
        description=(
            "CPU: average CPU utilisation in percent; InflightRequests: average requests in "
            "flight per pod, read from the server's metrics."
        ),
    )
    target: int = Field(
        default=8,
        ge=1,
        le=10_000,
        description="Target per pod: CPU percent, or requests in flight.",
    )


class EngineSpec(SpecModel):
    name: EngineName = Field(
        default=EngineName.KUBELLM,
        description="kubellm: the built-in server; vllm: the vLLM OpenAI server image.",
    )
    max_batch_size: int = Field(
        default=16, ge=1, le=1024, description="Sequences decoded together."
    )
    max_new_tokens: int = Field(
        default=256, ge=1, le=131_072, description="Cap on max_tokens per request."
    )
    max_prompt_tokens: int = Field(
        default=1024, ge=1, le=1_048_576, description="Longest accepted prompt, in tokens."
    )
    max_queue: int = Field(
        default=256, ge=1, le=100_000, description="Waiting requests before 429."
    )
    image: str | None = Field(default=None, max_length=512, description="Image override.")


class SecretKeySelector(SpecModel):
    name: str = Field(
        pattern=DNS_LABEL_PATTERN,
        max_length=253,
        description="Name of a Secret in the LLM's namespace.",
    )
    key: str = Field(
        default="api-key",
        pattern=r"^[-._a-zA-Z0-9]+$",
        max_length=253,
        description="Key inside the Secret.",
    )


class ServingSpec(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.replicas.min > 0 || has(self.scaleToZeroAfter)",
                    "required by replicas.min 0",
                    ".scaleToZeroAfter",
                ),
                cel(
                    "!has(self.scaleToZeroAfter) || self.replicas.min == 0",
                    "needs replicas.min 0",
                    ".scaleToZeroAfter",
                ),
                cel(
                    "!has(self.scaleToZeroAfter)"
                    " || duration(self.scaleToZeroAfter) > duration('0s')",
                    "must be longer than zero",
                    ".scaleToZeroAfter",
                ),
            ]
        }
    )

    replicas: ReplicasSpec = Field(
        default_factory=ReplicasSpec, description="Bounds for the autoscaler."
    )
    scale_to_zero_after: Duration | None = Field(
        default=None,
        description=(
            'With replicas.min 0: how long without requests (e.g. "10m") before the '
            "operator scales the production release to zero. Demand comes from `kubellm "
            "gateway`, which holds requests while a replica starts again."
        ),
    )

    @model_validator(mode="after")
    def _scale_to_zero(self) -> ServingSpec:
        after = self.scale_to_zero_after
        if self.replicas.min == 0 and after is None:
            raise ValueError("scaleToZeroAfter: required by replicas.min 0")
        if after is not None and self.replicas.min != 0:
            raise ValueError("scaleToZeroAfter: needs replicas.min 0")
        if after is not None and duration_seconds(after) <= 0:
            raise ValueError(f"scaleToZeroAfter: must be longer than zero (got {after!r})")
        return self

    autoscaling: AutoscalingSpec = Field(
        default_factory=AutoscalingSpec, description="What the autoscaler tracks."
    )
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec, description="Resources of each serving pod."
    )
    engine: EngineSpec = Field(default_factory=EngineSpec, description="The inference engine.")
    drain_seconds: int = Field(
        default=30,
        ge=0,
        le=3600,
        description="Grace period for in-flight requests when a pod or release retires.",
    )
    api_key_secret: SecretKeySelector | None = Field(
        default=None,
        description=(
            "Optional API key clients must send (Authorization: Bearer KEY), read from this "
            "Secret key. The server reads it from a mounted file (vLLM: VLLM_API_KEY); the "
            "load test sends it too. Health probes need no key."
        ),
    )
    model_volume_size: Quantity = Field(
        default="40Gi",
        description=(
            "sizeLimit of the emptyDir each serving pod downloads its version into; the "
            "kubelet evicts a pod that writes more. Size it to the model's files."
        ),
    )
