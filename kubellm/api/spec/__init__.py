"""The desired state of an LLM: what a user writes under `spec`.

These pydantic models are the single source of truth: the CRD's openAPIV3Schema (with its
descriptions, defaults, bounds and CEL rules) is generated from them, and the operator
parses every LLM through them. Field descriptions are what `kubectl explain` shows, so they
are written for users. Cross-field rules live twice on purpose: as pydantic validators
(clear messages for the CLI and the operator) and as `x-kubernetes-validations` CEL rules
(so a real apiserver refuses the object before the operator ever sees it).

The models are split by concern (`training`, `serving`, `rollout`, `registry`, with the
shared formats in `fields` and the whole in `llm`); this package re-exports the public
names, so `from kubellm.api.spec import LLMSpec` is the way to import them.
"""

from kubellm.api.spec.fields import ResourcesSpec, cel, duration_seconds
from kubellm.api.spec.llm import LLMSpec
from kubellm.api.spec.registry import MlflowSpec, ModelSpec
from kubellm.api.spec.rollout import (
    CanarySpec,
    CanaryStep,
    EvaluationConfigMap,
    EvaluationSpec,
    LoadTestSpec,
    MatchMode,
    OnFailure,
    PostPromotionSpec,
    RolloutSpec,
    SloSpec,
    Strategy,
)
from kubellm.api.spec.serving import (
    AutoscalingMetric,
    AutoscalingSpec,
    EngineName,
    EngineSpec,
    ReplicasSpec,
    SecretKeySelector,
    ServingSpec,
)
from kubellm.api.spec.training import (
    CheckpointsSpec,
    DatasetSpec,
    HyperparametersSpec,
    Toleration,
    TrainingMethod,
    TrainingSpec,
)

__all__ = [
    "AutoscalingMetric",
    "AutoscalingSpec",
    "CanarySpec",
    "CanaryStep",
    "CheckpointsSpec",
    "DatasetSpec",
    "EngineName",
    "EngineSpec",
    "EvaluationConfigMap",
    "EvaluationSpec",
    "HyperparametersSpec",
    "LLMSpec",
    "LoadTestSpec",
    "MatchMode",
    "MlflowSpec",
    "ModelSpec",
    "OnFailure",
    "PostPromotionSpec",
    "ReplicasSpec",
    "ResourcesSpec",
    "RolloutSpec",
    "SecretKeySelector",
    "ServingSpec",
    "SloSpec",
    "Strategy",
    "Toleration",
    "TrainingMethod",
    "TrainingSpec",
    "cel",
    "duration_seconds",
]
