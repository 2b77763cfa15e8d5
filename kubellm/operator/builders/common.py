"""What every child of an LLM shares: metadata, the owner reference, and the pod pieces.

The training Job, the serving Deployment and the load-test Job all carry the same
environment (pod IP, LLM name, the tracking URI without userinfo), the MLflow credentials
of their role, resources in the same shape, and (serving and load test) the API key file.
Built once here so the three kinds cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from kubellm.api.identity import API_VERSION, KIND
from kubellm.api.resource import LLM
from kubellm.api.spec import ResourcesSpec
from kubellm.operator.config import OperatorConfig
from kubellm.redaction import strip_userinfo

__all__ = [
    "API_KEY_DIR",
    "api_key_mount",
    "api_key_volume",
    "common_env",
    "credentials",
    "metadata",
    "owner_reference",
    "resources",
    "tracking_uri",
]

API_KEY_DIR = "/etc/kubellm/api-key"


def owner_reference(llm: LLM) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": llm.name,
        "uid": llm.uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def tracking_uri(llm: LLM, config: OperatorConfig) -> str | None:
    """The tracking URI children get, without userinfo (argv and env are widely readable;
    workloads take credentials from spec.mlflow.credentialsSecret)."""
    uri = llm.spec.mlflow.tracking_uri or config.tracking_uri
    return strip_userinfo(uri) if uri else None


def common_env(llm: LLM, config: OperatorConfig) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "KUBELLM_LLM_NAME", "value": llm.name},
    ]
    uri = tracking_uri(llm, config)
    if uri:
        env.append({"name": "MLFLOW_TRACKING_URI", "value": uri})
    for key, value in sorted(config.child_env.items()):
        env.append({"name": key, "value": value})
    return env


def credentials(llm: LLM, role: str) -> list[dict[str, Any]]:
    """``envFrom`` with the MLflow credentials of one workload role, least privilege first.

    training: log a run, register a version, move the candidate alias; fetch-model: read the
    version; loadtest: log a run and tag the version. The serving container is given none:
    it reads the model from its volume, and a process that faces users (or a third-party
    image such as vLLM) must hold no registry credentials.
    """
    mlflow = llm.spec.mlflow
    narrow = {
        "training": mlflow.training_credentials_secret,
        "fetch-model": mlflow.model_reader_credentials_secret,
        "loadtest": mlflow.load_test_credentials_secret,
    }[role]
    secret = narrow or mlflow.credentials_secret
    return [{"secretRef": {"name": secret}}] if secret else []


def api_key_volume(llm: LLM) -> list[dict[str, Any]]:
    """The serving API key Secret as a read-only file ``API_KEY_DIR/api-key``, if any."""
    ref = llm.spec.serving.api_key_secret
    if ref is None:
        return []
    items = [{"key": ref.key, "path": "api-key"}]
    return [{"name": "api-key", "secret": {"secretName": ref.name, "items": items}}]


def api_key_mount() -> dict[str, Any]:
    return {"name": "api-key", "mountPath": API_KEY_DIR, "readOnly": True}


def resources(res: ResourcesSpec, gpu_resource: str) -> dict[str, Any]:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if res.cpu:
        requests["cpu"] = res.cpu
        limits["cpu"] = res.cpu
    if res.memory:
        requests["memory"] = res.memory
        limits["memory"] = res.memory
    if res.gpus:
        limits[gpu_resource] = str(res.gpus)
        requests[gpu_resource] = str(res.gpus)
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def metadata(llm: LLM, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": llm.namespace, "labels": labels}
