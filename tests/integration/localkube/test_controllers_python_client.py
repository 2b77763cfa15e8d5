"""Python checklist item 4 with the real `kubernetes` client: Job deletion policies, logs."""

from __future__ import annotations

import pytest
from kubernetes import client

from localkube.testing.localkube import Cluster

from .controllers_support import job, pods, wait_for


@pytest.fixture
def batch(localkube: Cluster) -> client.BatchV1Api:
    return client.BatchV1Api(localkube.load_kube_config())


def running_job_pods(cluster: Cluster, ns: str, name: str) -> list[dict]:
    return [
        p for p in pods(cluster, ns, f"job-name={name}") if p["status"].get("phase") == "Running"
    ]


def test_background_job_deletion_removes_its_pods(
    localkube: Cluster, ns: str, batch: client.BatchV1Api
):
    batch.create_namespaced_job(ns, job("bg", "sleep 30"))
    wait_for(lambda: running_job_pods(localkube, ns, "bg"), what="job pod running")
    batch.delete_namespaced_job("bg", ns, propagation_policy="Background")
    wait_for(lambda: not pods(localkube, ns, "job-name=bg"), timeout=8, what="pods removed")


def test_job_deletion_without_policy_orphans_its_pods(
    localkube: Cluster, ns: str, batch: client.BatchV1Api
):
    batch.create_namespaced_job(ns, job("orphan", "sleep 30"))
    wait_for(lambda: running_job_pods(localkube, ns, "orphan"), what="job pod running")
    batch.delete_namespaced_job("orphan", ns)
    wait_for(lambda: not pods_with_owner(localkube, ns, "orphan"), what="owner references stripped")
    (pod,) = pods(localkube, ns, "job-name=orphan")
    assert pod["status"]["phase"] == "Running" and not pod["metadata"].get("deletionTimestamp")


def pods_with_owner(cluster: Cluster, ns: str, name: str) -> list[dict]:
    return [
        p for p in pods(cluster, ns, f"job-name={name}") if p["metadata"].get("ownerReferences")
    ]


def test_read_namespaced_pod_log_returns_the_output(
    localkube: Cluster, ns: str, batch: client.BatchV1Api
):
    core = client.CoreV1Api(localkube.load_kube_config())
    batch.create_namespaced_job(ns, job("talk", "echo hello from localkube"))
    done = wait_for(
        lambda: [
            p
            for p in pods(localkube, ns, "job-name=talk")
            if p["status"].get("phase") == "Succeeded"
        ],
        what="job pod succeeded",
    )
    assert (
        core.read_namespaced_pod_log(done[0]["metadata"]["name"], ns).strip()
        == "hello from localkube"
    )
