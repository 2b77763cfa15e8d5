"""The http-errors pod fault on a real pod: a tiny uvicorn app whose requests are failed by
the fault while it runs, its probe path never, and which serves normally once cleared."""

from __future__ import annotations

from typing import Any

import httpx

from localkube.testing.localkube import Cluster

from .controllers_support import apply, condition, needs_kubectl, pods, wait_for

pytestmark = needs_kubectl

TINY_APP = """
import os, uvicorn

async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["path"].encode()})

uvicorn.run(app, host=os.environ["POD_IP"], port=8000, log_level="warning", lifespan="off")
"""


def tiny_pod(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}, "annotations": annotations or {}},
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "python:3.11-slim",
                    "command": ["python", "-c", TINY_APP],
                    "env": [
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
                    ],
                    "ports": [{"name": "http", "containerPort": 8000}],
                    "readinessProbe": {
                        "httpGet": {"path": "/readyz", "port": "http"},
                        "periodSeconds": 1,
                    },
                }
            ]
        },
    }


def ready_pod(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return wait_for(
        lambda: next((p for p in pods(cluster, ns, f"app={name}") if _ready(p)), None),
        timeout=60,
        what=f"{name} Ready",
    )


def _ready(pod: dict[str, Any]) -> bool:
    return (condition(pod, "Ready") or {}).get("status") == "True"


def statuses(client: httpx.Client, url: str, n: int) -> list[int]:
    return [client.get(url).status_code for _ in range(n)]


def test_http_errors_fault_fails_its_share_of_a_running_pods_requests_until_cleared(
    localkube: Cluster, ns: str
) -> None:
    apply(localkube, ns, tiny_pod("tiny"))
    ip = ready_pod(localkube, ns, "tiny")["status"]["podIP"]
    base = f"http://{ip}:8000"
    with httpx.Client(timeout=10) as client:
        assert statuses(client, base + "/v1/completions", 5) == [200] * 5
        fault = localkube.add_pod_fault(
            kind="http-errors", namespace=ns, labels={"app": "tiny"}, rate=0.3, status=503
        )
        try:
            # within a sync period the running container fails 3 of every 10 requests
            wait_for(lambda: 503 in statuses(client, base + "/v1/completions", 4), what="a 503")
            got = [client.get(base + "/v1/completions") for _ in range(20)]
            failed = [r for r in got if r.status_code != 200]
            assert {r.status_code for r in failed} == {503}
            assert 5 <= len(failed) <= 7, [r.status_code for r in got]
            assert all(r.headers["x-localkube-fault"] == "http-errors" for r in failed)
            assert all(r.text == "/v1/completions" for r in got if r.status_code == 200)
            assert statuses(client, base + "/readyz", 10) == [200] * 10  # the probe's path
            (p,) = pods(localkube, ns, "app=tiny")
            assert _ready(p)  # broken, and still Ready
            assert p["status"]["containerStatuses"][0]["restartCount"] == 0
        finally:
            localkube.admin("DELETE", f"/_localkube/pod-faults?id={fault['id']}")
        wait_for(
            lambda: statuses(client, base + "/v1/completions", 10) == [200] * 10, what="recovery"
        )


def test_http_errors_annotation_fails_every_request_but_the_probes(
    localkube: Cluster, ns: str
) -> None:
    apply(
        localkube,
        ns,
        tiny_pod("broken", {"localkube.kubellm.dev/fault": "http-errors:rate=1,status=502"}),
    )
    ip = ready_pod(localkube, ns, "broken")["status"]["podIP"]
    with httpx.Client(timeout=10) as client:
        assert statuses(client, f"http://{ip}:8000/v1/models", 5) == [502] * 5
        assert statuses(client, f"http://{ip}:8000/readyz", 5) == [200] * 5
