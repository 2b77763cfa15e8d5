"""The chart lints, renders and validates against Kubernetes 1.30-1.33 in every combination."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.unit.chart.conftest import CHART, COMBINATIONS, NAMESPACE, RELEASE, Rendering, run_helm

KUBERNETES_VERSIONS = ("1.30.0", "1.31.0", "1.32.0", "1.33.0")
# Kinds kubernetes-validate has no schema for: checked against their CRD schema below instead.
CUSTOM_KINDS = {"ServiceMonitor", "ClusterKopfPeering", "KopfPeering", "LLM"}

_validated: set[tuple[str, str]] = set()


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_helm_lint_strict_passes(name: str, tmp_path: Path) -> None:
    result = run_helm(
        "lint", "--strict", str(CHART), "-n", NAMESPACE, values=COMBINATIONS[name], tmp=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_manifests_pass_kubernetes_validate_strict(
    rendering: Rendering, version: str
) -> None:
    for doc in rendering.docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        key = (version, json.dumps(doc, sort_keys=True))
        if key in _validated:  # the same document in another combination
            continue
        where = f"{rendering.name}: {doc['kind']}/{doc['metadata']['name']} on {version}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            pytest.fail(f"{where}: {path}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            pytest.fail(f"{where}: {error.message}")
        _validated.add(key)


def _crd_schemas(rendering: Rendering) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """(apiVersion, kind) -> (scope, openAPIV3Schema) of every CRD the chart ships."""
    schemas = {}
    for crd in rendering.of_kind("CustomResourceDefinition"):
        spec = crd["spec"]
        for version in spec["versions"]:
            key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
            schemas[key] = (spec["scope"], version["schema"]["openAPIV3Schema"])
    return schemas


def test_shipped_crds_are_the_llm_and_kopf_peering_resources(rendering: Rendering) -> None:
    names = {crd["metadata"]["name"] for crd in rendering.of_kind("CustomResourceDefinition")}
    assert names == {"llms.kubellm.dev", "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    committed = yaml.safe_load((CHART / "crds/llms.kubellm.dev.yaml").read_text())
    assert rendering.one("CustomResourceDefinition", "llms.kubellm.dev") == committed


def test_peering_objects_match_their_shipped_crd_schema(rendering: Rendering) -> None:
    schemas = _crd_schemas(rendering)
    for doc in rendering.docs:
        if doc["kind"] not in {"ClusterKopfPeering", "KopfPeering"}:
            continue
        scope, schema = schemas[(doc["apiVersion"], doc["kind"])]
        jsonschema.validate({k: v for k, v in doc.items() if k != "metadata"}, schema)
        assert ("namespace" in doc["metadata"]) == (scope == "Namespaced")


def test_service_monitor_scrapes_the_operator_metrics_port(rendering: Rendering) -> None:
    monitors = rendering.of_kind("ServiceMonitor")
    if not rendering.values.get("serviceMonitor", {}).get("enabled"):
        assert monitors == []
        return
    (monitor,) = monitors
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    service = rendering.one("Service", RELEASE)
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_every_namespaced_object_sits_in_the_release_or_a_watched_namespace(
    rendering: Rendering,
) -> None:
    allowed = {NAMESPACE, *rendering.values.get("watchNamespaces", [])}
    for doc in rendering.docs:
        if doc["kind"] in {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}:
            assert "namespace" not in doc["metadata"], doc["kind"]
        elif doc["kind"] != "ClusterKopfPeering":
            assert doc["metadata"].get("namespace") in allowed, doc["kind"]


def test_names_are_unique_per_kind_and_namespace(rendering: Rendering) -> None:
    keys = [
        (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in rendering.docs
    ]
    assert len(keys) == len(set(keys))


def test_namespaced_rbac_without_watched_namespaces_is_refused(tmp_path: Path) -> None:
    result = run_helm(
        "template", RELEASE, str(CHART), values={"rbac": {"namespaced": True}}, tmp=tmp_path
    )
    assert result.returncode != 0
    assert "rbac.namespaced=true needs watchNamespaces" in result.stderr


def test_notes_name_the_webhook_url_and_tracking_uri(tmp_path: Path) -> None:
    result = run_helm(
        "install", "--dry-run=client", RELEASE, str(CHART), "-n", NAMESPACE,
        values=COMBINATIONS["mlflow-sqlite"], tmp=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert f"http://{RELEASE}.{NAMESPACE}.svc.cluster.local/webhooks/mlflow" in notes
    assert f"http://{RELEASE}-mlflow.{NAMESPACE}.svc.cluster.local:5000" in notes
