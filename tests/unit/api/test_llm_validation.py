"""Invalid LLM manifests are refused with a message naming the field, by the pydantic
models and by the generated CRD schema (jsonschema + CEL) alike; examples are valid."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubellm.api import InvalidSpec, parse_llm
from kubellm.api.crd import build_crd
from kubellm.api.schema_validation import validate_against_crd

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
CRD = build_crd()


def _base() -> dict[str, Any]:
    return yaml.safe_load((REPO / "examples/tiny-pretrain.yaml").read_text())


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        keys = path.split(".")
        node = obj
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value

    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        keys = path.split(".")
        node = obj
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return mutate


# (case id, mutation, field path the error must name)
INVALID: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "replicas-max-below-min",
        _set("spec.serving.replicas", {"min": 3, "max": 1}),
        "spec.serving.replicas.max",
    ),
    ("replicas-min-zero", _set("spec.serving.replicas.min", 0), "spec.serving.replicas.min"),
    ("pretrain-without-architecture", _drop("spec.model.architecture"), "spec.model.architecture"),
    ("lora-without-base", _set("spec.training.method", "lora"), "spec.model.base"),
    ("full-without-base", _set("spec.training.method", "full"), "spec.model.base"),
    ("unknown-method", _set("spec.training.method", "distill"), "spec.training.method"),
    ("missing-registered-model", _drop("spec.model.registeredModel"), "spec.model.registeredModel"),
    (
        "bad-registered-model-name",
        _set("spec.model.registeredModel", "has space"),
        "spec.model.registeredModel",
    ),
    (
        "missing-dataset-uri",
        _set("spec.training.dataset", {"textField": "text"}),
        "spec.training.dataset.uri",
    ),
    (
        "epochs-and-max-steps",
        _set("spec.training.hyperparameters.epochs", 2),
        "spec.training.hyperparameters.maxSteps",
    ),
    (
        "learning-rate-not-a-number",
        _set("spec.training.hyperparameters.learningRate", "fast"),
        "spec.training.hyperparameters.learningRate",
    ),
    (
        "batch-size-zero",
        _set("spec.training.hyperparameters.batchSize", 0),
        "spec.training.hyperparameters.batchSize",
    ),
    (
        "memory-not-a-quantity",
        _set("spec.training.resources.memory", "lots"),
        "spec.training.resources.memory",
    ),
    ("negative-gpus", _set("spec.training.resources.gpus", -1), "spec.training.resources.gpus"),
    (
        "duration-not-a-duration",
        _set("spec.rollout.loadTest.duration", "ten seconds"),
        "spec.rollout.loadTest.duration",
    ),
    (
        "error-rate-above-one",
        _set("spec.rollout.loadTest.slo.maxErrorRate", "1.5"),
        "spec.rollout.loadTest.slo.maxErrorRate",
    ),
    ("zero-users", _set("spec.rollout.loadTest.users", 0), "spec.rollout.loadTest.users"),
    (
        "unknown-autoscaling-metric",
        _set("spec.serving.autoscaling.metric", "GPU"),
        "spec.serving.autoscaling.metric",
    ),
    (
        "same-aliases",
        _set("spec.rollout.productionAlias", "candidate"),
        "spec.rollout.productionAlias",
    ),
    ("unknown-field", _set("spec.serving.replicaCount", 3), "spec.serving.replicaCount"),
    ("unknown-engine", _set("spec.serving.engine.name", "tgi"), "spec.serving.engine.name"),
    ("nodes-zero", _set("spec.training.nodes", 0), "spec.training.nodes"),
    (
        "p95-latency-zero",
        _set("spec.rollout.loadTest.slo.p95LatencyMs", 0),
        "spec.rollout.loadTest.slo.p95LatencyMs",
    ),
    (
        "bad-toleration-effect",
        _set("spec.training.tolerations", [{"key": "gpu", "effect": "Sometimes"}]),
        "spec.training.tolerations[0].effect",
    ),
]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_is_valid_for_models_and_crd(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        parse_llm(doc)
        assert validate_against_crd(doc, CRD) == []


def test_at_least_fifteen_invalid_cases() -> None:
    assert len(INVALID) >= 15


@pytest.mark.parametrize(("mutate", "field"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_models_refuse_invalid_manifest_naming_the_field(
    mutate: Callable[[dict[str, Any]], None], field: str
) -> None:
    obj = _base()
    mutate(obj)
    with pytest.raises(InvalidSpec) as info:
        parse_llm(obj)
    assert any(line.startswith(field + ":") for line in info.value.errors), info.value.errors


@pytest.mark.parametrize(("mutate", "field"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_crd_schema_refuses_invalid_manifest_naming_the_field(
    mutate: Callable[[dict[str, Any]], None], field: str
) -> None:
    obj = _base()
    mutate(obj)
    errors = validate_against_crd(obj, CRD)
    assert any(line.startswith(field + ":") for line in errors), errors


def test_replicas_message_states_rule_and_values() -> None:
    obj = _base()
    obj["spec"]["serving"]["replicas"] = {"min": 2, "max": 1}
    with pytest.raises(InvalidSpec) as info:
        parse_llm(obj)
    assert "spec.serving.replicas.max: must be >= min (2 > 1)" in info.value.errors


def test_long_name_is_refused_because_children_append_suffixes() -> None:
    obj = _base()
    obj["metadata"]["name"] = "x" * 41
    with pytest.raises(InvalidSpec, match=r"metadata\.name: must be at most 40"):
        parse_llm(obj)


def test_defaults_fill_unset_sections() -> None:
    obj = copy.deepcopy(_base())
    del obj["spec"]["serving"]
    llm = parse_llm(obj)
    assert llm.spec.serving.replicas.min == 1
    assert llm.spec.rollout.candidate_alias == "candidate"
    assert llm.spec.dump()["serving"]["engine"]["name"] == "kubellm"
