"""The CRD is generated from the models, structurally valid, and committed up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from kubellm.api import goyaml
from kubellm.api.crd import build_crd, crd_yaml
from kubellm.api.schema_validation import crd_schema_errors

REPO = Path(__file__).resolve().parents[3]
COMMITTED = REPO / "charts/kubellm/crds/llms.kubellm.dev.yaml"


def test_committed_crd_equals_generated() -> None:
    assert COMMITTED.read_text() == crd_yaml(), "stale CRD: run `make crd`"


def test_committed_crd_reads_in_go_with_the_generated_types() -> None:
    """kubectl and helm read the file with Go's YAML reader: every scalar keeps its type."""
    assert goyaml.load(COMMITTED.read_text()) == build_crd()


def test_every_default_enum_and_example_validates_against_its_own_schema() -> None:
    """A kube-apiserver refuses a CRD whose defaults break their own schema."""
    assert crd_schema_errors(goyaml.load(COMMITTED.read_text())) == []


def test_schema_self_check_catches_a_default_that_go_reads_as_a_number() -> None:
    """The CRD as the old generator wrote it (plain PyYAML): `default: 5e-4` unquoted."""
    old_text = yaml.safe_dump(build_crd(), sort_keys=False, width=100)
    assert "default: 5e-4\n" in old_text
    errors = crd_schema_errors(goyaml.load(old_text))
    assert any("learningRate.default: 0.0005 is not of type 'string'" in e for e in errors), errors


def _serving_schema(crd: dict[str, Any]) -> dict[str, Any]:
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    serving: dict[str, Any] = spec["properties"]["serving"]["properties"]
    return serving


def test_schema_self_check_catches_defaults_outside_bounds_enums_and_rules() -> None:
    crd = build_crd()
    _serving_schema(crd)["replicas"]["default"] = {"min": 5, "max": 1}  # breaks a CEL rule
    errors = crd_schema_errors(crd)
    assert any("replicas.default: max: must be >= min" in e for e in errors), errors

    # kube-apiserver checks a default's CEL rules on the default as written, without the
    # nested defaults: `{}` for a section whose rule reads its fields is refused
    crd = build_crd()
    _serving_schema(crd)["replicas"]["default"] = {}
    errors = crd_schema_errors(crd)
    assert any("replicas.default" in e and "no such member" in e for e in errors), errors

    crd = build_crd()
    _serving_schema(crd)["engine"]["properties"]["maxBatchSize"]["default"] = 0
    errors = crd_schema_errors(crd)
    assert any("maxBatchSize.default: 0 is less than the minimum of 1" in e for e in errors)

    crd = build_crd()
    _serving_schema(crd)["autoscaling"]["properties"]["metric"]["enum"].append(7)
    errors = crd_schema_errors(crd)
    assert any("metric.enum[2]: 7 is not of type 'string'" in e for e in errors), errors


def test_crd_passes_kubernetes_validate_strict(tmp_path: Path) -> None:
    path = tmp_path / "crd.yaml"
    path.write_text(crd_yaml())
    for version in ("1.30.0", "1.32.0"):
        result = subprocess.run(
            [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", version, str(path)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def _walk(node: dict, path: str = ""):
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def test_schema_is_structural_and_every_spec_field_is_documented() -> None:
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema["properties"]["spec"], "spec"):
        assert "type" in node, f"{path} has no type"
        assert not {"anyOf", "oneOf", "$ref", "allOf"} & set(node), f"{path} is not structural"
        if path != "spec" and not path.endswith(("[]", "{}")):
            assert node.get("description"), f"{path} has no description"


def test_printer_columns_show_phase_stage_versions_replicas_and_p95() -> None:
    version = build_crd()["spec"]["versions"][0]
    names = [c["name"] for c in version["additionalPrinterColumns"]]
    assert names == [
        "Phase",
        "Stage",
        "Production",
        "Candidate",
        "P95-ms",
        "Replicas",
        "Cold-start-s",
        "Age",
    ]
    wide = [c["name"] for c in version["additionalPrinterColumns"] if c.get("priority")]
    assert wide == ["Cold-start-s"]  # shown with -o wide
    assert version["subresources"] == {"status": {}}


def test_nested_sections_default_so_the_apiserver_fills_them() -> None:
    spec = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    # written out whole: the apiserver checks CEL rules on a default without nested defaults
    assert spec["properties"]["serving"]["properties"]["replicas"]["default"] == {
        "min": 1,
        "max": 1,
    }
    assert spec["properties"]["serving"]["default"]["replicas"] == {"min": 1, "max": 1}
    assert spec["properties"]["serving"]["default"]["engine"]["maxBatchSize"] == 16
    assert "default" not in spec["properties"]["training"]


def test_cli_prints_the_crd() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kubellm", "crd"], capture_output=True, text=True, check=True
    ).stdout
    assert yaml.safe_load(out)["metadata"]["name"] == "llms.kubellm.dev"
