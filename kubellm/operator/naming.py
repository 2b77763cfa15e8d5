"""Deterministic names and labels of an LLM's children.

Names are derived from the LLM and from what the child is for (training content hash,
registry version), never from time or randomness: an operator restarted at any moment
recomputes the same names and finds what it created before instead of duplicating it.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any

__all__ = [
    "DOMAIN",
    "LABEL_COMPONENT",
    "LABEL_LLM",
    "LABEL_MANAGED_BY",
    "LABEL_VERSION",
    "MANAGED_BY",
    "SPEC_HASH_ANNOTATION",
    "TRAINING_HASH_ANNOTATION",
    "Component",
    "candidate_service_name",
    "checkpoints_claim_name",
    "child_labels",
    "content_hash",
    "deployment_name",
    "hpa_name",
    "loadtest_job_name",
    "production_service_name",
    "prompts_configmap_name",
    "training_job_name",
    "training_job_prefix",
]

DOMAIN = "kubellm.dev"
LABEL_LLM = f"{DOMAIN}/llm"
LABEL_COMPONENT = f"{DOMAIN}/component"
LABEL_VERSION = f"{DOMAIN}/version"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
SPEC_HASH_ANNOTATION = f"{DOMAIN}/spec-hash"
TRAINING_HASH_ANNOTATION = f"{DOMAIN}/training-hash"
#: the `LABEL_MANAGED_BY` value of every child (the gateway watches Services by it)
MANAGED_BY = "kubellm"


class Component(StrEnum):
    """What a child is for: the value of its `LABEL_COMPONENT` label."""

    TRAINING = "training"
    SERVING = "serving"
    LOADTEST = "loadtest"
    PRODUCTION = "production"  # the production Service
    CANDIDATE = "candidate"  # the candidate Service
    AUTOSCALER = "autoscaler"  # the production Deployment's HorizontalPodAutoscaler


def content_hash(value: Any, length: int = 10) -> str:
    """A short, stable hash of a JSON-able value (sorted keys)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def training_job_prefix(llm: str) -> str:
    """What every training Job's name (and its rendezvous Service's) starts with."""
    return f"{llm}-train-"


def training_job_name(llm: str, training_hash: str) -> str:
    return f"{training_job_prefix(llm)}{training_hash[:8]}"


def deployment_name(llm: str, version: str) -> str:
    return f"{llm}-v{version}"


def production_service_name(llm: str) -> str:
    return llm


def candidate_service_name(llm: str) -> str:
    return f"{llm}-candidate"


def loadtest_job_name(llm: str, version: str, attempt: str = "") -> str:
    """The load test of `version`; a retried test carries the `attempt` token as a suffix."""
    name = f"{llm}-loadtest-v{version}"
    return f"{name}-{attempt}" if attempt else name


def checkpoints_claim_name(llm: str) -> str:
    return f"{llm}-checkpoints"


def prompts_configmap_name(llm: str) -> str:
    return f"{llm}-prompts"


def hpa_name(llm: str) -> str:
    return llm


def child_labels(llm: str, component: str, version: str | None = None) -> dict[str, str]:
    labels = {
        LABEL_LLM: llm,
        LABEL_COMPONENT: str(component),  # a plain str: YAML dumpers refuse enum members
        LABEL_MANAGED_BY: MANAGED_BY,
        "app.kubernetes.io/name": "kubellm",
        "app.kubernetes.io/instance": llm,
    }
    if version is not None:
        labels[LABEL_VERSION] = version
    return labels
