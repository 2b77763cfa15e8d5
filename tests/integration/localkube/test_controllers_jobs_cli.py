"""Indexed Jobs, TTL after finished, and the `kubellm localkube up/status/down` commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from localkube.testing.localkube import Cluster, local_cluster

from .controllers_support import apply, get, job, needs_kubectl, pods, wait_for

pytestmark = needs_kubectl


def test_indexed_job_gives_each_pod_its_completion_index(localkube: Cluster, ns: str):
    apply(
        localkube,
        ns,
        job(
            "idx",
            "echo index=$JOB_COMPLETION_INDEX",
            completionMode="Indexed",
            completions=3,
            parallelism=3,
        ),
    )
    r = localkube.kubectl("wait", "--for=condition=Complete", "job/idx", "-n", ns, "--timeout=30s")
    assert r.returncode == 0, r.stderr
    status = get(localkube, f"/apis/batch/v1/namespaces/{ns}/jobs/idx")["status"]
    assert status["completedIndexes"] == "0-2" and status["succeeded"] == 3
    seen = {}
    for p in pods(localkube, ns, "job-name=idx"):
        index = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert p["metadata"]["name"].startswith(f"idx-{index}-")
        seen[index] = localkube.kubectl("logs", p["metadata"]["name"], "-n", ns).stdout.strip()
    assert seen == {str(i): f"index={i}" for i in range(3)}


def test_finished_job_is_deleted_after_its_ttl(localkube: Cluster, ns: str):
    apply(localkube, ns, job("short", "true", ttlSecondsAfterFinished=20))  # 2 s at time scale 0.1
    path = f"/apis/batch/v1/namespaces/{ns}/jobs/short"
    wait_for(lambda: get(localkube, path).get("status", {}).get("completionTime"), what="completed")
    wait_for(lambda: not get(localkube, path), timeout=10, what="job deleted by TTL")
    wait_for(lambda: not pods(localkube, ns, "job-name=short"), what="its pods collected")


def test_cli_status_then_down_stops_the_cluster(tmp_path: Path):
    with local_cluster(tmp_path / "lk") as cluster:
        cmd = [sys.executable, "-m", "kubellm", "localkube"]
        status = subprocess.run(
            [*cmd, "status", "--workdir", str(cluster.workdir)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert status.returncode == 0, status.stderr
        assert cluster.url in status.stdout and "export KUBECONFIG=" in status.stdout
        down = subprocess.run(
            [*cmd, "down", "--workdir", str(cluster.workdir)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert down.returncode == 0, down.stderr
        assert "stopped" in down.stdout
        after = subprocess.run(
            [*cmd, "status", "--workdir", str(cluster.workdir)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert after.returncode == 1 and "not running" in after.stdout
