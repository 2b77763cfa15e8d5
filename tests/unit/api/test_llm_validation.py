"""Invalid LLM manifests are refused with a message naming the field, by the pydantic
models and by the generated CRD schema (jsonschema + CEL) alike; examples and edge cases are
valid. The cases live in `invalid_manifests`, where an e2e test against a real apiserver can
reuse them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from kubellm.api import InvalidSpec, goyaml, parse_llm
from kubellm.api.crd import build_crd
from kubellm.api.schema_validation import validate_against_crd
from tests.unit.api.invalid_manifests import (
    INVALID,
    base_manifest,
    invalid_manifests,
    valid_edge_manifests,
)

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
CRD = build_crd()
INVALID_MANIFESTS = invalid_manifests()
VALID_EDGES = valid_edge_manifests()


def _base() -> dict[str, Any]:
    return base_manifest()


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_is_valid_for_models_and_crd(path: Path) -> None:
    for doc in goyaml.load_all(path.read_text()):  # as kubectl reads them
        parse_llm(doc)
        assert validate_against_crd(doc, CRD) == []


def test_at_least_fifteen_invalid_cases() -> None:
    assert len(INVALID) >= 15


@pytest.mark.parametrize(
    ("obj", "field"), [c[1:] for c in INVALID_MANIFESTS], ids=[c[0] for c in INVALID_MANIFESTS]
)
def test_models_refuse_invalid_manifest_naming_the_field(obj: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        parse_llm(obj)
    assert any(line.startswith(field + ":") for line in info.value.errors), info.value.errors


@pytest.mark.parametrize(
    ("obj", "field"), [c[1:] for c in INVALID_MANIFESTS], ids=[c[0] for c in INVALID_MANIFESTS]
)
def test_crd_schema_refuses_invalid_manifest_naming_the_field(
    obj: dict[str, Any], field: str
) -> None:
    errors = validate_against_crd(obj, CRD)
    assert any(line.startswith(field + ":") for line in errors), errors


@pytest.mark.parametrize("obj", [c[1] for c in VALID_EDGES], ids=[c[0] for c in VALID_EDGES])
def test_edge_manifests_are_valid_for_models_and_crd(obj: dict[str, Any]) -> None:
    parse_llm(obj)
    assert validate_against_crd(obj, CRD) == []


def test_shared_manifests_have_distinct_valid_names() -> None:
    names = [m["metadata"]["name"] for _, m, _ in INVALID_MANIFESTS]
    names += [m["metadata"]["name"] for _, m in VALID_EDGES]
    assert len(set(names)) == len(names)
    for name in names:
        parse_llm({**_base(), "metadata": {"name": name}})  # a valid LLM name


def _errors(obj: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidSpec) as info:
        parse_llm(obj)
    return info.value.errors


def test_models_and_crd_state_the_new_rules_alike() -> None:
    cases = {
        "eval-fraction-one": "spec.training.dataset.evalFraction: must be greater than 0 and "
        "at most 0.5",
        "warmup-longer-than-duration": "spec.rollout.loadTest.warmup: must be shorter than "
        "duration",
        "tracking-uri-ftp": "spec.mlflow.trackingUri: must be an http, https or file URI",
        "tracking-uri-http-empty-host": "spec.mlflow.trackingUri: an http(s) URI needs a host",
        "tracking-uri-file-relative": "spec.mlflow.trackingUri: a file URI needs an absolute",
    }
    by_id = {case_id: obj for case_id, obj, _ in INVALID_MANIFESTS}
    for case_id, prefix in cases.items():
        model_errors = _errors(by_id[case_id])
        crd_errors = validate_against_crd(by_id[case_id], CRD)
        assert any(e.startswith(prefix) for e in model_errors), (case_id, model_errors)
        assert any(e.startswith(prefix) for e in crd_errors), (case_id, crd_errors)


def test_warmup_message_states_both_durations() -> None:
    by_id = {case_id: obj for case_id, obj, _ in INVALID_MANIFESTS}
    errors = _errors(by_id["warmup-longer-in-smaller-units"])
    assert "spec.rollout.loadTest.warmup: must be shorter than duration (1500ms >= 1s)" in errors


def test_tracking_uri_error_never_echoes_a_password() -> None:
    by_id = {case_id: obj for case_id, obj, _ in INVALID_MANIFESTS}
    errors = _errors(by_id["tracking-uri-with-credentials"])
    assert errors and not any("s3cret" in e for e in errors), errors
    assert any("credentialsSecret" in e for e in errors)


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
