"""The desired state of an LLM: what a user writes under `spec`.

These pydantic models are the single source of truth: the CRD's openAPIV3Schema (with its
descriptions, defaults, bounds and CEL rules) is generated from them, and the operator
parses every LLM through them. Field descriptions are what `kubectl explain` shows, so they
are written for users. Cross-field rules live twice on purpose: as pydantic validators
(clear messages for the CLI and the operator) and as `x-kubernetes-validations` CEL rules
(so a real apiserver refuses the object before the operator ever sees it).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

__all__ = [
    "AutoscalingMetric",
    "AutoscalingSpec",
    "CheckpointsSpec",
    "DatasetSpec",
    "EngineName",
    "EngineSpec",
    "HyperparametersSpec",
    "LLMSpec",
    "LoadTestSpec",
    "MlflowSpec",
    "ModelSpec",
    "OnFailure",
    "ReplicasSpec",
    "ResourcesSpec",
    "RolloutSpec",
    "SecretKeySelector",
    "ServingSpec",
    "SloSpec",
    "Toleration",
    "TrainingMethod",
    "TrainingSpec",
    "cel",
]

# Kubernetes quantity ("500m", "2Gi", "1.5") and duration ("90s", "1m30s", "2h") strings.
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
# Each unit at most once, largest first, as `kubellm loadtest` accepts them (it refuses
# "1s1m"); the empty match is excluded by the Duration type's min_length.
DURATION_PATTERN = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$"
DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"
RATIO_PATTERN = r"^(0(\.[0-9]+)?|1(\.0+)?)$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
REGISTERED_MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

# MLflow tracking URIs that every pod of an LLM can use: an http(s) server with a host (and
# no credentials: those belong in credentialsSecret, since a spec is readable by anyone who
# can list LLMs), or a file store on a local path (a volume shared by the pods).
TRACKING_URI_SCHEME_PATTERN = r"^(https?|file):"
HTTP_URI_PATTERN = (
    r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?)(:[0-9]{1,5})?"
    r"([/?#]\S*)?$"
)
FILE_URI_PATTERN = r"^file:(//(localhost)?)?/([^/\s]\S*)?$"  # file:/p, file:///p
TRACKING_URI_SCHEME_MESSAGE = (
    "must be an http, https or file URI, e.g. http://mlflow.mlflow.svc:5000 or file:///mlruns"
)
HTTP_URI_MESSAGE = (
    "an http(s) URI needs a host (and an optional port) and no user or password: "
    "put credentials in credentialsSecret"
)
FILE_URI_MESSAGE = "a file URI needs an absolute local path, e.g. file:///mlruns"
EVAL_FRACTION_MAX = "0.5"  # `kubellm train --eval-fraction` refuses more
EVAL_FRACTION_MESSAGE = f"must be greater than 0 and at most {EVAL_FRACTION_MAX}"

Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=32)]
Duration = Annotated[str, Field(pattern=DURATION_PATTERN, min_length=2, max_length=32)]
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def duration_seconds(text: str) -> float:
    """Seconds in a Duration string (already matched against DURATION_PATTERN)."""
    return sum(
        float(amount) * _DURATION_UNITS[unit]
        for amount, unit in re.findall(r"([0-9]+)(ms|h|m|s)", text)
    )


def _cel_string(text: str) -> str:
    """``text`` as a CEL string literal (single-quoted, backslashes and quotes escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """One `x-kubernetes-validations` entry."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class TrainingMethod(StrEnum):
    """How weights are produced."""

    PRETRAIN = "pretrain"
    FULL = "full"
    LORA = "lora"


class EngineName(StrEnum):
    KUBELLM = "kubellm"
    VLLM = "vllm"


class AutoscalingMetric(StrEnum):
    CPU = "CPU"
    INFLIGHT_REQUESTS = "InflightRequests"


class OnFailure(StrEnum):
    ROLLBACK = "Rollback"
    KEEP = "KeepCandidate"


class ModelSpec(_Model):
    registered_model: str = Field(
        pattern=REGISTERED_MODEL_PATTERN,
        min_length=1,
        max_length=128,
        description=(
            "Name of the registered model in the MLflow model registry. Training registers "
            "new versions under it; the rollout aliases (candidate, production) live on it."
        ),
    )
    base: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description=(
            "Base weights for fine-tuning (training.method full or lora): a registry URI "
            "(models:/name/3, models:/name@production), a local directory, or a Hugging Face "
            "hub id (needs network access from the training pod)."
        ),
    )
    architecture: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description=(
            "Architecture to pre-train from scratch (training.method pretrain): a preset name "
            "such as gpt2-tiny, or the path of a transformers config JSON."
        ),
    )


class DatasetSpec(_Model):
    uri: str = Field(
        min_length=1,
        max_length=1024,
        description=(
            "Training text: file:// or a path to .txt (one example per line) or .jsonl, "
            "s3://bucket/key, or a hub dataset id (online only)."
        ),
    )
    text_field: str = Field(
        default="text",
        min_length=1,
        max_length=128,
        description="For .jsonl and hub datasets: the field holding the text.",
    )
    eval_fraction: str = Field(
        default="0.1",
        pattern=RATIO_PATTERN,
        max_length=32,
        description=(
            "Fraction of the examples held out for evaluation, as a decimal string: more "
            f"than 0 (the eval loss needs examples) and at most {EVAL_FRACTION_MAX}."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"double(self) > 0.0 && double(self) <= {EVAL_FRACTION_MAX}",
                    EVAL_FRACTION_MESSAGE,
                )
            ]
        },
    )

    @field_validator("eval_fraction")
    @classmethod
    def _eval_fraction_in_range(cls, value: str) -> str:
        if not 0 < float(value) <= float(EVAL_FRACTION_MAX):
            raise ValueError(f"{EVAL_FRACTION_MESSAGE} (got {value!r})")
        return value


class HyperparametersSpec(_Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!(has(self.epochs) && has(self.maxSteps))",
                    "set either epochs or maxSteps, not both",
                    ".maxSteps",
                )
            ]
        }
    )

    epochs: int | None = Field(
        default=None, ge=1, le=1000, description="Passes over the data (default 1)."
    )
    max_steps: int | None = Field(
        default=None, ge=1, le=10_000_000, description="Optimizer steps (instead of epochs)."
    )
    learning_rate: str = Field(
        default="5e-4",
        pattern=DECIMAL_PATTERN,
        description="Peak learning rate as a decimal string, e.g. 3e-4.",
    )
    batch_size: int = Field(default=8, ge=1, le=4096, description="Per-device batch size.")
    sequence_length: int = Field(
        default=128, ge=8, le=131_072, description="Tokens per training example."
    )
    gradient_accumulation: int = Field(
        default=1, ge=1, le=1024, description="Micro-batches accumulated per optimizer step."
    )
    seed: int = Field(default=42, ge=0, le=2**31 - 1, description="Random seed.")
    lora_rank: int = Field(default=8, ge=1, le=1024, description="LoRA rank (method lora).")
    lora_alpha: int = Field(default=16, ge=1, le=4096, description="LoRA alpha (method lora).")
    vocab_size: int = Field(
        default=1024,
        ge=256,
        le=1_000_000,
        description="Tokenizer vocabulary trained on the data (method pretrain).",
    )

    @model_validator(mode="after")
    def _epochs_or_steps(self) -> HyperparametersSpec:
        if self.epochs is not None and self.max_steps is not None:
            raise ValueError("maxSteps: set either epochs or maxSteps, not both")
        return self


class ResourcesSpec(_Model):
    gpus: int = Field(
        default=0, ge=0, le=64, description="GPUs per pod (the cluster's GPU resource name)."
    )
    cpu: Quantity | None = Field(default=None, description='CPU request and limit, e.g. "2".')
    memory: Quantity | None = Field(default=None, description='Memory, e.g. "8Gi".')


class Toleration(_Model):
    key: str | None = Field(default=None, max_length=253, description="Taint key.")
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists, or Equal (the default) to match value."
    )
    value: str | None = Field(default=None, max_length=253, description="Taint value.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to tolerate; empty matches all effects."
    )
    toleration_seconds: int | None = Field(default=None, ge=0, description="For NoExecute.")


class CheckpointsSpec(_Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.claimName) != has(self.size)",
                    "set either claimName (an existing claim) or size (a new one)",
                    ".size",
                ),
                cel(
                    "!has(self.storageClassName) || has(self.size)",
                    "only for a claim the operator creates (size)",
                    ".storageClassName",
                ),
            ]
        }
    )

    claim_name: str | None = Field(
        default=None,
        pattern=DNS_LABEL_PATTERN,
        max_length=253,
        description=(
            "An existing PersistentVolumeClaim in the LLM's namespace. It must be "
            "ReadWriteMany when training.nodes > 1. Each LLM writes under a folder of its name."
        ),
    )
    size: Quantity | None = Field(
        default=None,
        description=(
            'Size of a claim the operator creates, named "<llm>-checkpoints" and deleted with '
            "the LLM: ReadWriteOnce, or ReadWriteMany when training.nodes > 1."
        ),
    )
    storage_class_name: str | None = Field(
        default=None,
        pattern=DNS_LABEL_PATTERN,
        max_length=253,
        description="StorageClass of the created claim; default: the cluster's default class.",
    )

    @model_validator(mode="after")
    def _claim_or_size(self) -> CheckpointsSpec:
        if (self.claim_name is None) == (self.size is None):
            raise ValueError("size: set either claimName (an existing claim) or size (a new one)")
        if self.storage_class_name is not None and self.size is None:
            raise ValueError("storageClassName: only for a claim the operator creates (size)")
        return self


class TrainingSpec(_Model):
    method: TrainingMethod = Field(
        default=TrainingMethod.FULL,
        description=(
            "pretrain: train from scratch (needs model.architecture); full: fine-tune all "
            "weights of model.base; lora: train LoRA adapters on model.base and merge them."
        ),
    )
    dataset: DatasetSpec = Field(description="The training data.")
    hyperparameters: HyperparametersSpec = Field(
        default_factory=HyperparametersSpec, description="Optimisation settings."
    )
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec, description="Resources of each training pod."
    )
    nodes: int = Field(
        default=1,
        ge=1,
        le=256,
        description="Pods (nodes) to train on; > 1 runs an Indexed Job under torchrun.",
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels the training pods must match."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=32, description="Taints the training pods tolerate."
    )
    backoff_limit: int = Field(
        default=2, ge=0, le=100, description="Pod failures tolerated before the Job fails."
    )
    active_deadline_seconds: int | None = Field(
        default=None, ge=1, description="Wall-clock limit of the training Job."
    )
    max_eval_loss: str | None = Field(
        default=None,
        pattern=DECIMAL_PATTERN,
        description="Quality gate: a run with a higher eval loss registers nothing.",
    )
    image: str | None = Field(
        default=None, max_length=512, description="Image override for the training pods."
    )
    checkpoints: CheckpointsSpec | None = Field(
        default=None,
        description=(
            "Keep checkpoints on a PersistentVolumeClaim, so a training pod that is evicted, "
            "deleted or rescheduled resumes from its last checkpoint (and MLflow run) instead "
            "of step 0. Unset: an emptyDir, which survives container restarts only. Changing "
            "it does not start a new training."
        ),
    )


class ReplicasSpec(_Model):
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


class AutoscalingSpec(_Model):
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


class EngineSpec(_Model):
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


class SecretKeySelector(_Model):
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


class ServingSpec(_Model):
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


class SloSpec(_Model):
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


class LoadTestSpec(_Model):
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


class RolloutSpec(_Model):
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


class MlflowSpec(_Model):
    tracking_uri: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description=(
            "MLflow tracking server (http or https, credentials in credentialsSecret) or "
            "file store (file:///path on a volume every pod mounts); default: the "
            "operator's configured URI."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"self.matches({_cel_string(TRACKING_URI_SCHEME_PATTERN)})",
                    TRACKING_URI_SCHEME_MESSAGE,
                ),
                cel(
                    f"!self.matches('^https?:') || self.matches({_cel_string(HTTP_URI_PATTERN)})",
                    HTTP_URI_MESSAGE,
                ),
                cel(
                    f"!self.startsWith('file:') || self.matches({_cel_string(FILE_URI_PATTERN)})",
                    FILE_URI_MESSAGE,
                ),
            ]
        },
    )
    credentials_secret: str | None = Field(
        default=None,
        pattern=DNS_LABEL_PATTERN,
        max_length=253,
        description=(
            "Default Secret whose keys (MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD or "
            "MLFLOW_TRACKING_TOKEN) become MLflow environment variables of the containers that "
            "talk to the registry: training, the model download before serving, the load test. "
            "The serving container never receives it. The three fields below give each of "
            "those its own, narrower credentials."
        ),
    )
    training_credentials_secret: str | None = Field(
        default=None,
        pattern=DNS_LABEL_PATTERN,
        max_length=253,
        description=(
            "Credentials of the training pods (default: credentialsSecret): they log a run, "
            "register a version and move the candidate alias (MLflow EDIT on the registered "
            "model and the experiment)."
        ),
    )
    model_reader_credentials_secret: str | None = Field(
        default=None,
        pattern=DNS_LABEL_PATTERN,
        max_length=253,
        description=(
            "Credentials of the init container that downloads a version into each serving pod "
            "(default: credentialsSecret); READ on the registered model is enough."
        ),
    )
    load_test_credentials_secret: str | None = Field(
        default=None,
        pattern=DNS_LABEL_PATTERN,
        max_length=253,
        description=(
            "Credentials of the load-test pods (default: credentialsSecret): they log a run and "
            "write kubellm.loadtest.* tags on the version under test (MLflow EDIT)."
        ),
    )

    @field_validator("tracking_uri")
    @classmethod
    def _tracking_uri_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not re.match(TRACKING_URI_SCHEME_PATTERN, value):
            raise ValueError(f"{TRACKING_URI_SCHEME_MESSAGE} (got {value!r})")
        if re.match("^https?:", value) and not re.fullmatch(HTTP_URI_PATTERN, value):
            shown = re.sub(r"//[^/?#]*@", "//***@", value)  # never echo a password
            raise ValueError(f"{HTTP_URI_MESSAGE} (got {shown!r})")
        if value.startswith("file:") and not re.fullmatch(FILE_URI_PATTERN, value):
            raise ValueError(f"{FILE_URI_MESSAGE} (got {value!r})")
        return value


class LLMSpec(_Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.training) || self.training.method == 'pretrain'"
                    " || has(self.model.base)",
                    "required by training.method full and lora",
                    ".model.base",
                ),
                cel(
                    "!has(self.training) || self.training.method != 'pretrain'"
                    " || has(self.model.architecture)",
                    "required by training.method pretrain",
                    ".model.architecture",
                ),
            ]
        }
    )

    model: ModelSpec = Field(description="Which registered model this LLM trains and serves.")
    training: TrainingSpec | None = Field(
        default=None, description="Optional: produce versions by training (a Job per change)."
    )
    serving: ServingSpec = Field(
        default_factory=ServingSpec, description="How released versions are served."
    )
    rollout: RolloutSpec = Field(
        default_factory=RolloutSpec, description="How a candidate version becomes production."
    )
    mlflow: MlflowSpec = Field(default_factory=MlflowSpec, description="The MLflow registry.")

    @model_validator(mode="after")
    def _cross_field(self) -> LLMSpec:
        if self.training is not None:
            method = self.training.method
            if method in (TrainingMethod.FULL, TrainingMethod.LORA) and not self.model.base:
                raise ValueError(f"model.base: required by training.method {method.value}")
            if method is TrainingMethod.PRETRAIN and not self.model.architecture:
                raise ValueError("model.architecture: required by training.method pretrain")
        return self

    def dump(self) -> dict[str, Any]:
        """The spec as Kubernetes JSON (camelCase, defaults filled in)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
