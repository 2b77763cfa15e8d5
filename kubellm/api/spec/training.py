"""`spec.training`: how an LLM produces new versions by training (a Job per change).

The data, the optimisation settings, the scheduling of the training pods and where their
checkpoints live. `kubellm train` accepts exactly what these models accept (see
`kubellm.training.options`), so a spec the API admits is never refused by the trainer.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from kubellm.api.spec.fields import (
    DECIMAL_PATTERN,
    DNS_LABEL_PATTERN,
    RATIO_PATTERN,
    Quantity,
    ResourcesSpec,
    SpecModel,
    cel,
)

__all__ = [
    "EVAL_FRACTION_MAX",
    "CheckpointsSpec",
    "DatasetSpec",
    "HyperparametersSpec",
    "Toleration",
    "TrainingMethod",
    "TrainingSpec",
]

EVAL_FRACTION_MAX = "0.5"  # `kubellm train --eval-fraction` refuses more
EVAL_FRACTION_MESSAGE = f"must be greater than 0 and at most {EVAL_FRACTION_MAX}"


class TrainingMethod(StrEnum):
    """How weights are produced."""

    PRETRAIN = "pretrain"
    FULL = "full"
    LORA = "lora"


class DatasetSpec(SpecModel):
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


class HyperparametersSpec(SpecModel):
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


class Toleration(SpecModel):
    key: str | None = Field(default=None, max_length=253, description="Taint key.")
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists, or Equal (the default) to match value."
    )
    value: str | None = Field(default=None, max_length=253, description="Taint value.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to tolerate; empty matches all effects."
    )
    toleration_seconds: int | None = Field(default=None, ge=0, description="For NoExecute.")


class CheckpointsSpec(SpecModel):
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
    every_steps: int = Field(
        default=100,
        ge=1,
        le=10_000_000,
        description=(
            "Checkpoint every N optimizer steps: a resumed training repeats at most N - 1 "
            "steps; each checkpoint costs a write of the model and optimizer state."
        ),
    )

    @model_validator(mode="after")
    def _claim_or_size(self) -> CheckpointsSpec:
        if (self.claim_name is None) == (self.size is None):
            raise ValueError("size: set either claimName (an existing claim) or size (a new one)")
        if self.storage_class_name is not None and self.size is None:
            raise ValueError("storageClassName: only for a claim the operator creates (size)")
        return self


class TrainingSpec(SpecModel):
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
