"""The CRD is generated from the models, structurally valid, and committed up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from kubellm.api.crd import build_crd, crd_yaml

REPO = Path(__file__).resolve().parents[3]
COMMITTED = REPO / "charts/kubellm/crds/llms.kubellm.dev.yaml"


def test_committed_crd_equals_generated() -> None:
    assert COMMITTED.read_text() == crd_yaml(), "stale CRD: run `make crd`"


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


def test_printer_columns_show_phase_versions_and_p95() -> None:
    version = build_crd()["spec"]["versions"][0]
    names = [c["name"] for c in version["additionalPrinterColumns"]]
    assert names == ["Phase", "Production", "Candidate", "P95-ms", "Age"]
    assert version["subresources"] == {"status": {}}


def test_nested_sections_default_so_the_apiserver_fills_them() -> None:
    spec = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["serving"]["default"] == {}
    assert spec["properties"]["serving"]["properties"]["replicas"]["default"] == {}
    assert "default" not in spec["properties"]["training"]


def test_cli_prints_the_crd() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kubellm", "crd"], capture_output=True, text=True, check=True
    ).stdout
    assert yaml.safe_load(out)["metadata"]["name"] == "llms.kubellm.dev"
