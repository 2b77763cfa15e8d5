"""Instances that coexist and leave nothing behind: address blocks, SIGKILL, leftovers.

A localkube killed hard must take every process it started along within seconds, and the
next one in the same workdir must start (saying what it found); two instances running at
once must hand out disjoint pod and Service addresses and both serve traffic.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from localkube.testing.localkube import Cluster, local_cluster

from .controllers_support import apply, get, needs_kubectl, pods, service, wait_for, web_deployment

pytestmark = needs_kubectl

FAMILY = {  # a pod whose container starts two grandchildren in its own process group
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "family"},
    "spec": {
        "terminationGracePeriodSeconds": 30,
        "containers": [
            {"name": "c", "image": "x", "command": ["sh", "-c", "sleep 300 & sleep 301 & wait"]}
        ],
    },
}


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            continue
    return out


def _wait_gone(procs: list[psutil.Process], timeout: float) -> float:
    started = time.monotonic()
    while _alive(procs) and time.monotonic() - started < timeout:
        time.sleep(0.05)
    left = _alive(procs)
    assert not left, [" ".join(p.cmdline()) for p in left]
    return time.monotonic() - started


def _family_running(cluster: Cluster, ns: str = "default") -> list[psutil.Process]:
    apply(cluster, ns, FAMILY)
    wait_for(
        lambda: (
            get(cluster, f"/api/v1/namespaces/{ns}/pods/family").get("status", {}).get("phase")
            == "Running"
        ),
        what="pod running",
    )
    # localkube up, its watchdog, the pod's sh and its two sleeps
    return wait_for(
        lambda: (lambda c: c if len(c) >= 4 else None)(
            psutil.Process(cluster.pid).children(recursive=True)
        ),
        what="the pod's processes",
    )


def test_sigkilled_localkube_leaves_no_process_and_its_workdir_starts_again(tmp_path: Path):
    workdir = tmp_path / "lk"
    with local_cluster(workdir) as cluster:
        procs = _family_running(cluster)
        os.kill(cluster.pid, signal.SIGKILL)
        took = _wait_gone(procs, timeout=5)
    print(f"{len(procs)} processes gone {took:.1f}s after SIGKILL")
    assert json.loads((workdir / "localkube.json").read_text())["pid"] == cluster.pid

    with local_cluster(workdir) as again:
        log = (workdir / "localkube.log").read_text()
        assert f"(pid {cluster.pid}) died without stopping" in log
        r = again.kubectl(
            "run", "hello", "--image=x", "--restart=Never", "--command", "--", "echo", "hi"
        )
        assert r.returncode == 0, r.stderr
        wait_for(
            lambda: (
                get(again, "/api/v1/namespaces/default/pods/hello").get("status", {}).get("phase")
                == "Succeeded"
            ),
            what="pod succeeded",
        )
        assert again.kubectl("logs", "hello").stdout.strip() == "hi"


OWNER = """
import sys, time
from pathlib import Path
from localkube.testing.localkube import local_cluster
with local_cluster(Path(sys.argv[1])) as cluster:
    print(cluster.pid, flush=True)
    time.sleep(600)
"""


def test_killing_the_process_that_runs_a_cluster_takes_the_cluster_along(tmp_path: Path):
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path / "lk")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline().strip()
        assert line, "the owner did not start its cluster"
        kubeconfig = tmp_path / "lk" / "kubeconfig"
        cluster = _cluster_from(tmp_path / "lk", int(line), kubeconfig)
        procs = [psutil.Process(cluster.pid), *_family_running(cluster)]
        owner.kill()
        owner.wait(5)
        took = _wait_gone(procs, timeout=5)
        print(f"{len(procs)} processes gone {took:.1f}s after the owner's SIGKILL")
    finally:
        if owner.poll() is None:
            owner.kill()


def _cluster_from(workdir: Path, pid: int, kubeconfig: Path) -> Cluster:
    from localkube.apiserver.auth import read_credentials

    state = json.loads((workdir / "localkube.json").read_text())
    creds = read_credentials(kubeconfig)
    return Cluster(
        kubeconfig_path=kubeconfig,
        url=state["url"],
        workdir=workdir,
        pid=pid,
        token=creds.token,
        ca_pem=creds.ca_pem,
        pod_cidr=state["podCIDR"],
        service_cidr=state["serviceCIDR"],
    )


def _serve_web(cluster: Cluster, ns: str) -> str:
    """Deploy the web app and its Service; return what the Service's cluster IP answers."""
    apply(cluster, ns, web_deployment())
    apply(cluster, ns, service())
    svc: dict[str, Any] = get(cluster, f"/api/v1/namespaces/{ns}/services/web")
    ip = svc["spec"]["clusterIP"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(cluster.service_cidr)

    def answer() -> str:
        try:
            with urllib.request.urlopen(f"http://{ip}:80/", timeout=2) as resp:
                return str(resp.read().decode().strip())
        except OSError:
            return ""

    return wait_for(answer, timeout=30, what=f"service {ip} answering")


def test_two_clusters_take_disjoint_blocks_and_both_serve(
    localkube: Cluster, ns: str, tmp_path: Path
):
    with local_cluster(tmp_path / "second") as second:
        blocks = [ipaddress.ip_network(c) for c in (localkube.pod_cidr, localkube.service_cidr)]
        others = [ipaddress.ip_network(c) for c in (second.pod_cidr, second.service_cidr)]
        assert all(not a.overlaps(b) for a in blocks for b in others)

        first_pod = _serve_web(localkube, ns)
        second_pod = _serve_web(second, "default")
        for cluster, namespace, name in (
            (localkube, ns, first_pod),
            (second, "default", second_pod),
        ):
            ips = {p["status"]["podIP"] for p in pods(cluster, namespace, "app=web")}
            assert all(
                ipaddress.ip_address(i) in ipaddress.ip_network(cluster.pod_cidr) for i in ips
            )
            assert name in {p["metadata"]["name"] for p in pods(cluster, namespace, "app=web")}

        cmd = [sys.executable, "-m", "kubellm", "localkube"]
        status = subprocess.run([*cmd, "status"], capture_output=True, text=True, timeout=30)
        assert status.returncode == 0, status.stderr
        rows = status.stdout.splitlines()
        for cluster in (localkube, second):
            row = next(r for r in rows if r.endswith(str(cluster.workdir.resolve())))
            assert cluster.url in row and cluster.pod_cidr in row and cluster.service_cidr in row

        again = subprocess.run(
            [*cmd, "up", "--workdir", str(second.workdir)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert again.returncode == 1
        assert f"already running in {second.workdir}" in again.stderr
        assert "kubellm localkube down --workdir" in again.stderr
