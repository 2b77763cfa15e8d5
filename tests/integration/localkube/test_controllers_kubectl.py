"""Checklist items 10-13 with the real kubectl: rollouts, scaling, Jobs, deletion, logs -f."""

from __future__ import annotations

import subprocess
import time

from localkube.testing.localkube import Cluster

from .controllers_support import (
    apply,
    condition,
    get,
    job,
    needs_kubectl,
    pods,
    wait_for,
    web_deployment,
)

pytestmark = needs_kubectl


def running(cluster: Cluster, ns: str, selector: str) -> list[str]:
    return [
        p["metadata"]["name"]
        for p in pods(cluster, ns, selector)
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]


def test_rollout_status_then_scale_to_three_running_pods(localkube: Cluster, ns: str):
    apply(localkube, ns, web_deployment())
    r = localkube.kubectl("rollout", "status", "deploy/web", "-n", ns, "--timeout=30s")
    assert r.returncode == 0, r.stderr
    assert 'deployment "web" successfully rolled out' in r.stdout
    assert localkube.kubectl("scale", "deploy/web", "--replicas=3", "-n", ns).returncode == 0
    wait_for(lambda: len(running(localkube, ns, "app=web")) == 3, what="3 running pods")
    rs = get(localkube, f"/apis/apps/v1/namespaces/{ns}/replicasets")["items"]
    assert len(rs) == 1 and rs[0]["metadata"]["name"].startswith("web-")
    assert rs[0]["metadata"]["labels"]["pod-template-hash"] in rs[0]["metadata"]["name"]


def test_rollout_restart_replaces_pods_within_surge(localkube: Cluster, ns: str):
    apply(localkube, ns, web_deployment(replicas=2))
    assert (
        localkube.kubectl("rollout", "status", "deploy/web", "-n", ns, "--timeout=30s").returncode
        == 0
    )
    before = set(running(localkube, ns, "app=web"))
    assert localkube.kubectl("rollout", "restart", "deploy/web", "-n", ns).returncode == 0
    r = localkube.kubectl("rollout", "status", "deploy/web", "-n", ns, "--timeout=30s")
    assert r.returncode == 0 and "successfully rolled out" in r.stdout, r.stderr
    after = wait_for(
        lambda: (s := set(running(localkube, ns, "app=web"))) and len(s) == 2 and s, what="2 pods"
    )
    assert not before & after
    d = get(localkube, f"/apis/apps/v1/namespaces/{ns}/deployments/web")
    assert condition(d, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"


def test_job_completes_with_logs_and_termination_message(localkube: Cluster, ns: str):
    apply(localkube, ns, job("j1", "echo hi; echo done > $KUBELLM_TERMINATION_LOG"))
    r = localkube.kubectl("wait", "--for=condition=Complete", "job/j1", "-n", ns, "--timeout=30s")
    assert r.returncode == 0, r.stderr
    assert localkube.kubectl("logs", "job/j1", "-n", ns).stdout.strip() == "hi"
    (pod,) = pods(localkube, ns, "job-name=j1")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["message"].strip() == "done" and terminated["reason"] == "Completed"


def test_failing_job_hits_backoff_limit_with_two_failed_pods(localkube: Cluster, ns: str):
    apply(localkube, ns, job("j2", "echo failing; exit 1", backoffLimit=1))
    r = localkube.kubectl("wait", "--for=condition=Failed", "job/j2", "-n", ns, "--timeout=30s")
    assert r.returncode == 0, r.stderr
    j = get(localkube, f"/apis/batch/v1/namespaces/{ns}/jobs/j2")
    assert condition(j, "Failed")["reason"] == "BackoffLimitExceeded"
    assert j["status"]["failed"] == 2
    failed = [p for p in pods(localkube, ns, "job-name=j2") if p["status"]["phase"] == "Failed"]
    assert len(failed) == 2


def test_deleting_deployment_or_job_removes_replicasets_and_pods(localkube: Cluster, ns: str):
    apply(localkube, ns, web_deployment(replicas=2))
    apply(localkube, ns, job("sleeper", "sleep 30"))
    wait_for(
        lambda: (
            len(running(localkube, ns, "app=web")) == 2
            and running(localkube, ns, "job-name=sleeper")
        )
    )
    started = time.monotonic()
    assert localkube.kubectl("delete", "deploy", "web", "-n", ns, "--wait=false").returncode == 0
    assert localkube.kubectl("delete", "job", "sleeper", "-n", ns, "--wait=false").returncode == 0
    wait_for(lambda: not pods(localkube, ns), timeout=5, what="all pods gone")
    assert not get(localkube, f"/apis/apps/v1/namespaces/{ns}/replicasets")["items"]
    assert time.monotonic() - started < 5


def test_logs_follow_streams_until_the_container_exits(localkube: Cluster, ns: str):
    apply(localkube, ns, job("ticker", "for i in 1 2 3 4; do echo tick $i; sleep 0.5; done"))
    pod = wait_for(lambda: running(localkube, ns, "job-name=ticker"), what="running ticker")[0]
    proc = subprocess.run(
        ["kubectl", "logs", "-f", pod, "-n", ns],
        env=localkube.env(),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 0, proc.stderr
    # started while the pod ran, it returned only at the exit, with the lines written later
    assert proc.stdout.split("\n")[:4] == ["tick 1", "tick 2", "tick 3", "tick 4"]
