"""Networking: a Deployment of real HTTP servers behind its Service's cluster IP."""

from __future__ import annotations

import ipaddress
import urllib.request

from localkube.testing.localkube import Cluster

from .controllers_support import (
    apply,
    get,
    needs_kubectl,
    pods,
    service,
    wait_for,
    web_deployment,
)

pytestmark = needs_kubectl


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as resp:
        return resp.read().decode().strip()


def ready_pods(cluster: Cluster, ns: str) -> list[str]:
    out = []
    for p in pods(cluster, ns, "app=web"):
        conds = {c["type"]: c["status"] for c in p["status"].get("conditions", [])}
        if conds.get("Ready") == "True" and not p["metadata"].get("deletionTimestamp"):
            out.append(p["metadata"]["name"])
    return out


def test_service_cluster_ip_reaches_pods_round_robin_and_survives_pod_deletion(
    localkube: Cluster, ns: str
):
    apply(localkube, ns, web_deployment())
    apply(localkube, ns, service())
    ip = get(localkube, f"/api/v1/namespaces/{ns}/services/web")["spec"]["clusterIP"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(localkube.service_cidr)
    url = f"http://{ip}:80/"
    wait_for(lambda: ready_pods(localkube, ns), what="a ready pod")
    first = wait_for(lambda: _try(url), what="service answering")
    assert first in ready_pods(localkube, ns)

    assert localkube.kubectl("scale", "deploy/web", "--replicas=3", "-n", ns).returncode == 0
    wait_for(lambda: len(ready_pods(localkube, ns)) == 3, what="3 ready pods")
    seen = {fetch(url) for _ in range(9)}
    assert seen == set(ready_pods(localkube, ns))

    victim = sorted(seen)[0]
    assert localkube.kubectl("delete", "pod", victim, "-n", ns, "--wait=false").returncode == 0
    answers = [fetch(url) for _ in range(12)]  # the Service keeps answering meanwhile
    assert all(answers)
    wait_for(lambda: len(ready_pods(localkube, ns)) == 3, what="replacement pod")
    assert victim not in {fetch(url) for _ in range(6)}


def test_pods_get_distinct_loopback_ips_and_bind_them(localkube: Cluster, ns: str):
    apply(localkube, ns, web_deployment(replicas=2))
    wait_for(lambda: len(ready_pods(localkube, ns)) == 2, what="2 ready pods")
    ips = {p["status"]["podIP"] for p in pods(localkube, ns, "app=web")}
    block = ipaddress.ip_network(localkube.pod_cidr)
    assert len(ips) == 2 and all(ipaddress.ip_address(ip) in block for ip in ips)
    names = {fetch(f"http://{ip}:8000/") for ip in ips}
    assert names == set(ready_pods(localkube, ns))


def _try(url: str) -> str:
    try:
        return fetch(url)
    except OSError:
        return ""
