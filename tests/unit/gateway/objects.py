"""Kubernetes objects as the gateway sees them in watch events (test builders)."""

from __future__ import annotations

from typing import Any


def llm(name: str, ns: str = "default", routes: list[dict[str, Any]] | None = None) -> dict:
    status: dict[str, Any] = {}
    if routes is not None:
        status["serving"] = {"routes": routes}
    return {
        "apiVersion": "kubellm.dev/v1alpha1",
        "kind": "LLM",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": "2026-11-30T10:00:00Z"},
        "status": status,
    }


def service(name: str, llm_name: str, version: str, ns: str = "default") -> dict:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "selector": {
                "kubellm.dev/llm": llm_name,
                "kubellm.dev/component": "serving",
                "kubellm.dev/version": version,
            },
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
) -> dict:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ns,
        "labels": {
            "kubellm.dev/llm": llm_name,
            "kubellm.dev/component": "serving",
            "kubellm.dev/version": version,
        },
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
