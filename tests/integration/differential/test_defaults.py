"""Defaults and admission: what each server adds to the same new object (spec §10).

Every built-in kind the operator creates is POSTed with the same minimal body on both sides;
the answers are compared field by field (flattened), leaving out metadata and the values a
server picks itself (cluster IPs, uid-bearing selectors and labels).
"""

from __future__ import annotations

import re
from typing import Any

from .conftest import Observation, Pair
from .manifests import deployment, job
from .probing import Side

# values each server picks for itself
_OWN_CHOICE = re.compile(r"clusterIPs?\b|controller-uid|kube-api-access-\w+")


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else k))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, v in enumerate(value):
            out.update(_flat(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _bodies(ns: str) -> dict[str, tuple[str, dict[str, Any]]]:
    suspended = job("j", "true")
    suspended["spec"]["suspend"] = True
    return {
        "service": (
            f"/api/v1/namespaces/{ns}/services",
            {"metadata": {"name": "s"}, "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}]}},
        ),
        "deployment": (f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("d", 0)),
        "job": (f"/apis/batch/v1/namespaces/{ns}/jobs", suspended),
        "hpa": (
            f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers",
            {
                "metadata": {"name": "h"},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
                    "maxReplicas": 3,
                },
            },
        ),
        "pdb": (
            f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
            {"metadata": {"name": "p"}, "spec": {"minAvailable": 1}},
        ),
        "secret": (
            f"/api/v1/namespaces/{ns}/secrets",
            {"metadata": {"name": "sec"}, "stringData": {"a": "b"}},
        ),
        "configmap": (f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "cm"}}),
        "lease": (
            f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
            {"metadata": {"name": "l"}},
        ),
        "serviceaccount": (
            f"/api/v1/namespaces/{ns}/serviceaccounts",
            {"metadata": {"name": "sa"}},
        ),
        "namespace": ("/api/v1/namespaces", {"metadata": {"name": f"{ns}-new"}}),
    }


def test_defaults_of_new_objects(pair: Pair) -> None:
    def observe(side: Side) -> Observation:
        obs: Observation = {}
        for kind, (path, body) in _bodies(pair.ns).items():
            created = side.ok("POST", path, body)
            created.pop("metadata")
            for key, value in _flat(created).items():
                if not _OWN_CHOICE.search(key):
                    obs[f"{kind}.{key}"] = value
        side.drop_namespace(f"{pair.ns}-new")
        return obs

    pair.check("defaults", observe)


def test_pod_admission_defaults(pair: Pair) -> None:
    def observe(side: Side) -> Observation:
        # ServiceAccount admission needs the namespace's `default` account (a controller's)
        side.wait(
            lambda: (
                side.call("GET", f"/api/v1/namespaces/{pair.ns}/serviceaccounts/default").code
                == 200
                or side.name == "localkube"
            ),
            what="default service account",
        )
        container = {"name": "c", "image": "busybox", "command": ["sleep", "600"]}
        body = {"metadata": {"name": "p"}, "spec": {"containers": [container]}}
        created = side.ok("POST", f"/api/v1/namespaces/{pair.ns}/pods", body)
        return {
            key: value
            for key, value in _flat(created["spec"]).items()
            if not _OWN_CHOICE.search(key)
        }

    pair.check("pod-defaults", observe)
