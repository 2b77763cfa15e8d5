"""The project's own LLM CRD served by localkube: examples apply, CEL rules give 422 causes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from kubellm.api.crd import build_crd, crd_yaml

from .apiserver_fixtures import Kube, kube, needs_kubectl

__all__ = ["kube"]

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.fixture(scope="module")
def llm_api(kube: Kube) -> Any:
    api = kube.api_client()
    try:
        client.ApiextensionsV1Api(api).create_custom_resource_definition(build_crd())
    except ApiException as e:  # already applied by kubectl in this module
        assert e.status == 409
    yield client.CustomObjectsApi(api)
    api.close()


def _example() -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / "tiny-pretrain.yaml").read_text())  # type: ignore[no-any-return]


def _create(llm_api: Any, body: dict[str, Any]) -> dict[str, Any]:
    crd = build_crd()
    group, version = crd["spec"]["group"], crd["spec"]["versions"][0]["name"]
    return llm_api.create_namespaced_custom_object(  # type: ignore[no-any-return]
        group, version, "default", crd["spec"]["names"]["plural"], body
    )


@needs_kubectl
def test_examples_apply_with_server_side_validation(kube: Kube) -> None:
    out = kube.kubectl("apply", "-f", "-", input=crd_yaml())
    assert out.returncode == 0, out.stderr
    out = kube.kubectl("apply", "-f", str(EXAMPLES / "tiny-pretrain.yaml"))
    assert out.returncode == 0 and "created" in out.stdout, out.stderr


def test_cel_rule_violation_is_422_with_field_cause(llm_api: Any) -> None:
    body = _example()
    body["metadata"]["name"] = "bad-replicas"
    body["spec"]["serving"]["replicas"] = {"min": 3, "max": 1}
    with pytest.raises(ApiException) as err:
        _create(llm_api, body)
    assert err.value.status == 422
    causes = json.loads(err.value.body)["details"]["causes"]
    assert {"field": "spec.serving.replicas.max"}.items() <= causes[0].items()
    assert "must be >= min" in causes[0]["message"]


def test_has_guarded_rule_and_defaults(llm_api: Any) -> None:
    body = copy.deepcopy(_example())
    body["metadata"]["name"] = "needs-base"
    body["spec"]["training"]["method"] = "lora"
    with pytest.raises(ApiException) as err:
        _create(llm_api, body)
    fields = [c["field"] for c in json.loads(err.value.body)["details"]["causes"]]
    assert "spec.model.base" in fields
    body["metadata"]["name"] = "ok-pretrain"
    body["spec"]["training"]["method"] = "pretrain"
    created = _create(llm_api, body)
    assert created["metadata"]["generation"] == 1
