"""Render the Helm chart once per documented values combination, for every chart test.

`helm template` takes ~0.1 s, so each combination is rendered once per session and shared.
The combinations are the ones values.yaml documents; each test runs over all of them.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubellm.api import goyaml
from kubellm.tools.binaries import find

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts/kubellm"
RELEASE = "kubellm"
NAMESPACE = "kubellm-system"
TEAMS = ["team-a", "team-b"]

# name -> values. Keep in step with the list at the top of values.yaml.
COMBINATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "namespaced-rbac": {"rbac": {"namespaced": True}, "watchNamespaces": TEAMS},
    "watch-namespaces-cluster-rbac": {"watchNamespaces": TEAMS},
    "mlflow-sqlite": {"mlflow": {"server": {"enabled": True}}},
    "mlflow-external-db": {
        "mlflow": {
            "credentialsSecret": "mlflow-credentials",
            "server": {
                "enabled": True,
                "database": {"existingSecret": "mlflow-db", "uriKey": "uri"},
                "artifactsDestination": "s3://models/mlflow",
                "webhookEncryptionKey": {"existingSecret": "mlflow-fernet"},
            },
        }
    },
    "mlflow-external-uri": {
        "mlflow": {"trackingUri": "https://mlflow.example.com", "credentialsSecret": "mlflow-creds"}
    },
    "service-monitor": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "peering": {"replicaCount": 2},
    "peering-namespaced": {
        "replicaCount": 3,
        "rbac": {"namespaced": True},
        "watchNamespaces": TEAMS,
    },
    "webhook-existing-secret": {"webhook": {"existingSecret": "my-webhook", "secretKey": "token"}},
    "webhook-secret-value": {"webhook": {"secret": "s3cr3t-from-values"}},
    "webhook-disabled": {"webhook": {"enabled": False}},
    "mlflow-without-auth": {"mlflow": {"server": {"enabled": True, "auth": {"enabled": False}}}},
    "hardening-options": {
        "watchNamespaces": TEAMS,
        "mlflow": {"server": {"enabled": True, "auth": {"adminSecret": "mlflow-root"}}},
        "workloads": {"imageAllowlist": ["registry.example.com/ml/*", "vllm/*"]},
        "networkPolicy": {
            "serving": {
                "namespaces": ["team-a"],
                "ingressFrom": [{"namespaceSelector": {"matchLabels": {"team": "apps"}}}],
                "extraEgress": [{"ports": [{"port": 443, "protocol": "TCP"}]}],
            },
            "operator": {"ingressFrom": [{"namespaceSelector": {}}]},
        },
    },
    "network-policy-disabled": {"networkPolicy": {"enabled": False}},
    "gpu-node-defaults": {
        "workloads": {
            "gpuResource": "amd.com/gpu",
            "nodeSelector": {"accelerator": "mi300x"},
            "tolerations": [{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        }
    },
    "local-demo": {
        "image": {
            "pullPolicy": "Never",
            "command": ["/opt/venv/bin/python", "-m", "kubellm", "operator"],
        },
        "operator": {"extraEnv": [{"name": "KUBELLM_DEMO", "value": "1"}]},
        "mlflow": {"trackingUri": "http://127.0.0.1:5000"},
    },
}


def helm() -> str:
    path = find("helm")
    if path is None:
        pytest.fail("helm not found: run `python -m kubellm.tools.binaries ensure` (make venv)")
    return path


def run_helm(
    *args: str, values: dict[str, Any] | None, tmp: Path
) -> subprocess.CompletedProcess[str]:
    """Run helm with ``values`` as a values file; never raises on a non-zero exit."""
    cmd = [helm(), *args]
    if values is not None:
        text = goyaml.dump(values)  # helm reads it with Go's YAML rules
        values_file = tmp / f"values-{hashlib.sha256(text.encode()).hexdigest()[:16]}.yaml"
        values_file.write_text(text)
        cmd += ["-f", str(values_file)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


@dataclass
class Rendering:
    """One combination rendered: the raw text and its documents."""

    name: str
    values: dict[str, Any]
    text: str

    @cached_property
    def docs(self) -> list[dict[str, Any]]:
        return [d for d in yaml.safe_load_all(self.text) if d]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [d for d in self.of_kind(kind) if name is None or d["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.name}: {len(found)} {kind} named {name}"
        return found[0]

    @property
    def operator(self) -> dict[str, Any]:
        return self.one("Deployment", RELEASE)

    @property
    def operator_container(self) -> dict[str, Any]:
        (container,) = self.operator["spec"]["template"]["spec"]["containers"]
        return dict(container)

    @property
    def operator_env(self) -> dict[str, dict[str, Any]]:
        return {e["name"]: e for e in self.operator_container["env"]}


class Renderer:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self._cache: dict[str, Rendering] = {}

    def render(self, name: str) -> Rendering:
        if name not in self._cache:
            values = COMBINATIONS[name]
            result = run_helm(
                "template",
                RELEASE,
                str(CHART),
                "-n",
                NAMESPACE,
                "--include-crds",
                values=values,
                tmp=self.tmp,
            )
            assert result.returncode == 0, f"{name}: {result.stderr}"
            self._cache[name] = Rendering(name, values, result.stdout)
        return self._cache[name]


@pytest.fixture(scope="session")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Renderer]:
    yield Renderer(tmp_path_factory.mktemp("chart"))


@pytest.fixture(params=sorted(COMBINATIONS))
def rendering(request: pytest.FixtureRequest, renderer: Renderer) -> Rendering:
    """Each documented combination, rendered once per session."""
    return renderer.render(request.param)
