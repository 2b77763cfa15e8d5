"""What the demo installs: the Helm chart rendered for a local cluster, and the example LLM.

The operator and gateway containers run this Python (with the kubeconfig and their pod IP),
so the chart's Deployments become local processes like any other pod of localkube.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubellm.demo.common import CHART, NAMESPACE, DemoFailure, share_root

__all__ = [
    "demo_manifest",
    "manifest_name",
    "render_chart",
]


def render_chart(
    helm: str,
    mlflow_url: str,
    kubeconfig: Path,
    webhook_port: int,
    pass_kubeconfig: bool = True,
    chart: Path | None = None,
) -> str:
    """The chart rendered for localkube: the operator container runs this Python."""
    from localkube import lifetime

    child_env = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    }
    extra_env: list[dict[str, Any]] = [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "KUBECONFIG", "value": str(kubeconfig)},
        {"name": "KUBELLM_CHILD_COMMAND", "value": f"{sys.executable} -m kubellm"},
        {"name": "KUBELLM_CHILD_ENV", "value": json.dumps(child_env)},
        {"name": "KUBELLM_WEBHOOK_HOST", "value": "$(POD_IP)"},
        {"name": "KUBELLM_LIVENESS_HOST", "value": "$(POD_IP)"},
        {"name": "KUBELLM_DRAIN_DELAY", "value": "2s"},
        {
            "name": "KUBELLM_WEBHOOK_PUBLIC_URL",
            "value": f"http://$(POD_IP):{webhook_port}/webhooks/mlflow",
        },
        {"name": "HF_HUB_OFFLINE", "value": "1"},
        {"name": "MLFLOW_DISABLE_TELEMETRY", "value": "true"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]
    values: dict[str, Any] = {
        "image": {"command": [sys.executable, "-m", "kubellm", "operator"], "pullPolicy": "Never"},
        "operator": {
            "pollInterval": "5s",
            "webhookPort": webhook_port,
            "extraEnv": extra_env,
            # the demo runs as the developer's user, not the image's uid 10001
            "podSecurityContext": {"runAsNonRoot": False},
            "securityContext": {"runAsNonRoot": False, "readOnlyRootFilesystem": False},
        },
        "mlflow": {"trackingUri": mlflow_url},
        # the gateway as a local process too: this Python, the kubeconfig, its pod IP
        "gateway": {
            "command": [sys.executable, "-m", "kubellm", "gateway"],
            "extraEnv": [
                *extra_env[:2],  # POD_IP, KUBECONFIG
                {"name": "KUBELLM_GATEWAY_HOST", "value": "$(POD_IP)"},
            ],
        },
    }
    if not pass_kubeconfig:
        for env in (extra_env, values["gateway"]["extraEnv"]):
            env[:] = [e for e in env if e["name"] != "KUBECONFIG"]
    values_file = kubeconfig.with_name(kubeconfig.name + "-values.json")
    values_file.write_text(json.dumps(values))
    result = subprocess.run(
        [
            helm,
            "template",
            "kubellm",
            str(chart or share_root() / CHART),
            "--namespace",
            NAMESPACE,
            "--include-crds",
            "-f",
            str(values_file),
        ],
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=lifetime.die_with_parent(signal.SIGKILL),
    )
    if result.returncode != 0:
        raise DemoFailure(f"helm template failed: {result.stderr.strip()}")
    return result.stdout


def demo_manifest(example: Path, root: Path | None = None) -> str:
    """The example LLM with its dataset path made absolute (pods run in their own dirs).

    A relative dataset path is relative to `root` (the repository's layout: default
    :func:`share_root`). Written as JSON: PyYAML emits `3e-3` unquoted, which kubectl's
    YAML 1.2 parser reads as a number where the CRD wants a string.
    """
    import yaml

    obj = yaml.safe_load(example.read_text())
    dataset = obj["spec"]["training"]["dataset"]
    if "://" not in dataset["uri"] and not dataset["uri"].startswith("/"):
        dataset["uri"] = str(((root or share_root()) / dataset["uri"]).resolve())
    return json.dumps(obj)


def manifest_name(manifest: str) -> str:
    """The LLM a :func:`demo_manifest` names: the demo watches it, its endpoint serves it."""
    name = (json.loads(manifest).get("metadata") or {}).get("name")
    if not name:
        raise DemoFailure("the example manifest names no LLM (metadata.name)")
    return str(name)
