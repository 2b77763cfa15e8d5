"""The thinnest kopf operator that does what bench/operator.py times: the baseline peer.

On an LLM's creation it posts a Job when the LLM has training, and sets `status.phase`;
nothing else (no observation of children, no registry, no planning).
"""

from __future__ import annotations

from typing import Any

import kopf
import kubernetes


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.enabled = False
    settings.execution.max_workers = 8


@kopf.on.create("kubellm.dev", "v1alpha1", "llms")
def created(name: str, namespace: str, spec: Any, patch: kopf.Patch, **_: Any) -> None:
    if spec.get("training"):
        kubernetes.config.load_kube_config()
        batch = kubernetes.client.BatchV1Api()
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"{name}-train-peer"},
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "train", "image": "x", "command": ["true"]}],
                    }
                }
            },
        }
        batch.create_namespaced_job(namespace, job)
    patch.status["phase"] = "Pending"
