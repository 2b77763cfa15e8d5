"""Helpers for the controller integration tests: namespaces, manifests, polling."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from localkube.testing.localkube import Cluster

T = TypeVar("T")

needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None and shutil.which("/usr/bin/kubectl") is None,
    reason="kubectl is not on PATH",
)


#: what reading a not-yet-populated object raises (``obj["status"]`` before a controller
#: wrote one, ``None.get`` on an absent field): while polling, that means "not yet"
NOT_YET = (LookupError, TypeError, AttributeError)


def wait_for(
    fn: Callable[[], T], timeout: float = 15.0, interval: float = 0.1, what: str = ""
) -> T:
    """Poll `fn` until it returns a truthy value; fail with the last value after `timeout`.

    Objects fill in over time (a Pod has no ``status`` until the kubelet saw it, an HPA none
    until its controller's first pass, later still on a busy machine): a lookup in a field
    that is not there yet counts as "not yet", and is reported if it is still the last
    outcome at the deadline.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except NOT_YET as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what or fn}: last value {last!r}")


def apply(cluster: Cluster, ns: str, manifest: str | dict[str, Any]) -> str:
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    r = cluster.kubectl("apply", "-n", ns, "-f", "-", input=text)
    assert r.returncode == 0, r.stderr
    return r.stdout


def namespace(cluster: Cluster) -> Iterator[str]:
    from kubernetes import client

    api = client.CoreV1Api(cluster.load_kube_config())
    name = f"t-{uuid.uuid4().hex[:8]}"
    api.create_namespace({"metadata": {"name": name}})
    yield name
    api.delete_namespace(name)


def web_deployment(name: str = "web", replicas: int = 1, **extra_spec: Any) -> dict[str, Any]:
    """A Deployment whose pods run `python -m http.server` on their pod IP.

    Each pod serves a file with its own name at `/`, so a client can tell pods apart.
    """
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "terminationGracePeriodSeconds": 5,
                "containers": [
                    {
                        "name": "web",
                        "image": "python:3.11-slim",
                        "command": ["sh", "-c"],
                        "args": [
                            "echo $(POD_NAME) > index.html; "
                            "exec python -m http.server --bind $(POD_IP) 8000"
                        ],
                        "env": [
                            {
                                "name": "POD_IP",
                                "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                            },
                            {
                                "name": "POD_NAME",
                                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                            },
                        ],
                        "ports": [{"name": "http", "containerPort": 8000}],
                        "readinessProbe": {
                            "httpGet": {"path": "/", "port": "http"},
                            "periodSeconds": 1,
                        },
                    }
                ],
            },
        },
    }
    spec.update(extra_spec)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def service(name: str = "web", port: int = 80) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": port, "targetPort": "http"}]},
    }


def job(name: str, script: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "template": {
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {"name": "main", "image": "busybox", "command": ["sh", "-c", script]}
                ],
            }
        }
    }
    body.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": body}


def condition(obj: Any, ctype: str) -> dict[str, Any] | None:
    """The condition ``ctype`` of an API object (a dict or a client model), or None while the
    object, its ``status`` or its conditions are not there yet."""
    if obj is None:
        return None
    status = obj.get("status") if isinstance(obj, dict) else getattr(obj, "status", None)
    if status is None:
        return None
    conds = status.get("conditions") if isinstance(status, dict) else status.conditions
    for c in conds or []:
        c = c if isinstance(c, dict) else c.to_dict()
        if c.get("type") == ctype:
            return dict(c)
    return None


def get(cluster: Cluster, path: str) -> dict[str, Any]:
    """GET an API path as JSON (404 gives {})."""
    import urllib.error

    try:
        result: dict[str, Any] = cluster.admin("GET", path)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return {}
        raise
    return result


def pods(cluster: Cluster, ns: str, selector: str = "") -> list[dict[str, Any]]:
    from urllib.parse import quote

    path = f"/api/v1/namespaces/{ns}/pods"
    if selector:
        path += f"?labelSelector={quote(selector)}"
    items: list[dict[str, Any]] = get(cluster, path).get("items", [])
    return items
