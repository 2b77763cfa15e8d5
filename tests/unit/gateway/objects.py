"""Kubernetes objects as the gateway sees them in watch events (test builders)."""

from __future__ import annotations

from typing import Any

from kubellm.api.identity import API_VERSION, KIND
from kubellm.operator.naming import LABEL_COMPONENT, LABEL_LLM, LABEL_VERSION, Component


def _serving(llm_name: str, version: str) -> dict[str, str]:
    """The labels of a serving pod, and the selector of the Services in front of it."""
    return {LABEL_LLM: llm_name, LABEL_COMPONENT: Component.SERVING, LABEL_VERSION: version}


def llm(
    name: str, ns: str = "default", routes: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if routes is not None:
        status["serving"] = {"routes": routes}
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": "2026-11-30T10:00:00Z"},
        "status": status,
    }


def service(name: str, llm_name: str, version: str, ns: str = "default") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "selector": _serving(llm_name, version),
            "ports": [{"name": "http", "port": 8000, "targetPort": "http"}],
        },
    }


def pod(
    name: str,
    llm_name: str,
    version: str,
    ip: str | None,
    *,
    ready: bool = True,
    port: int = 8000,
    ns: str = "default",
    deleting: bool = False,
    phase: str = "Running",
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ns,
        "labels": _serving(llm_name, version),
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-11-30T10:00:00Z"
    return {
        "metadata": meta,
        "spec": {
            "containers": [{"name": "server", "ports": [{"name": "http", "containerPort": port}]}]
        },
        "status": {
            "phase": phase,
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }
