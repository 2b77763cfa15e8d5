"""The LLM resource: spec and status models, validation, conditions, and the CRD; and the
Kubernetes vocabulary every client of ours shares (`timestamps`, `rest`: kinds and errors).

This package imports nothing else of kubellm: every other layer depends on it.
"""

from kubellm.api.identity import API_VERSION, GROUP, KIND, PLURAL, VERSION
from kubellm.api.resource import LLM, InvalidSpec, parse_llm, parse_spec
from kubellm.api.spec import LLMSpec, TrainingMethod
from kubellm.api.status import Condition, LLMStatus
from kubellm.api.vocabulary import ConditionStatus, Phase

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "LLM",
    "PLURAL",
    "VERSION",
    "Condition",
    "ConditionStatus",
    "InvalidSpec",
    "LLMSpec",
    "LLMStatus",
    "Phase",
    "TrainingMethod",
    "parse_llm",
    "parse_spec",
]
