"""`spec` as a whole: the concerns put together, and the rules that span them.

Cross-field rules between concerns (training.method needs model.base or
model.architecture) can only be checked here, where every part is in view.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, model_validator

from kubellm.api.spec.fields import SpecModel, cel
from kubellm.api.spec.registry import MlflowSpec, ModelSpec
from kubellm.api.spec.rollout import RolloutSpec
from kubellm.api.spec.serving import ServingSpec
from kubellm.api.spec.training import TrainingMethod, TrainingSpec

__all__ = ["LLMSpec"]


class LLMSpec(SpecModel):
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
