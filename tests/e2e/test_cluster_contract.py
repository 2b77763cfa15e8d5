"""What the cluster itself enforces and serves, on localkube and on a real kube-apiserver.

The CRD accepts every example and the edge cases, and refuses each invalid manifest of
`tests/unit/api/invalid_manifests.py` naming the field (server-side dry run, so the
apiserver's own schema, defaults and CEL rules decide). Pods get logs through `kubectl
logs`, resolve Service names, and (real control plane) are scheduled by the real scheduler
against the node's fake GPU capacity.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from kubellm.api import goyaml
from localkube.testing.localkube import Cluster
from tests.unit.api.invalid_manifests import invalid_manifests, valid_edge_manifests

from .conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NAMESPACE = "contract"


@pytest.fixture(scope="module")
def cluster(e2e_cluster: Cluster) -> Cluster:
    e2e_cluster.kubectl("create", "namespace", NAMESPACE)
    return e2e_cluster


def _dry_run(cluster: Cluster, obj: dict[str, Any]) -> tuple[int, str]:
    obj = {**obj, "metadata": {**obj["metadata"], "namespace": NAMESPACE}}
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-n", NAMESPACE, "-f", "-", input=json.dumps(obj)
    )
    return result.returncode, result.stdout + result.stderr


def test_every_example_and_edge_manifest_is_accepted(cluster: Cluster) -> None:
    examples = [
        doc
        for path in sorted((REPO / "examples").glob("*.yaml"))
        for doc in goyaml.load_all(path.read_text())
        if doc and doc.get("kind") == "LLM"
    ]
    assert len(examples) >= 3
    for obj in [*examples, *(m for _, m in valid_edge_manifests())]:
        code, out = _dry_run(cluster, obj)
        assert code == 0, f"{obj['metadata']['name']}: {out}"


def test_every_invalid_manifest_is_refused_naming_its_field(cluster: Cluster) -> None:
    cases = invalid_manifests()
    assert len(cases) > 20
    accepted = []
    unnamed = []
    for case_id, obj, field in cases:
        code, out = _dry_run(cluster, obj)
        if code == 0:
            accepted.append(case_id)
        elif field not in out:
            unnamed.append(f"{case_id}: wanted {field!r} in {out.strip()[:300]}")
    assert not accepted, f"accepted by {cluster.description}: {accepted}"
    assert not unnamed, "\n".join(unnamed)


def _pod(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "python", "command": command, **spec}],
        },
    }


def _phase(cluster: Cluster, name: str) -> str:
    out = cluster.kubectl("get", "pod", name, "-n", NAMESPACE, "-o", "jsonpath={.status.phase}")
    return str(out.stdout)


def _wait_phase(cluster: Cluster, name: str, phases: tuple[str, ...], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    phase = ""
    while time.monotonic() < deadline:
        phase = _phase(cluster, name)
        if phase in phases:
            return phase
        time.sleep(0.5)
    raise AssertionError(f"pod {name} is {phase!r}, not one of {phases}")


def _apply(cluster: Cluster, *objs: dict[str, Any]) -> None:
    for obj in objs:
        result = cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))
        assert result.returncode == 0, result.stderr


def test_kubectl_logs_reads_a_pods_output(cluster: Cluster) -> None:
    _apply(cluster, _pod("hello", ["python", "-c", "print('hello from the pod')"]))
    _wait_phase(cluster, "hello", ("Succeeded",))
    out = cluster.kubectl("logs", "hello", "-n", NAMESPACE)
    assert out.returncode == 0, out.stderr
    assert "hello from the pod" in out.stdout


def test_pods_resolve_service_names(cluster: Cluster, tmp_path: Path) -> None:
    server = _pod(
        "names-server",
        ["python", "-m", "http.server", "8000", "--bind", "$(POD_IP)"],
        env=[{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        readinessProbe={"tcpSocket": {"port": 8000}, "periodSeconds": 1},
    )
    server["spec"]["restartPolicy"] = "Always"
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "names", "namespace": NAMESPACE},
        "spec": {"selector": {"app": "names-server"}, "ports": [{"port": 80, "targetPort": 8000}]},
    }
    fetch = (
        "import urllib.request\n"
        "for host in ('names', 'names.contract', 'names.contract.svc.cluster.local'):\n"
        "    with urllib.request.urlopen(f'http://{host}/', timeout=5) as r:\n"
        "        print(host, r.status)\n"
    )
    _apply(cluster, server, service)
    _wait_phase(cluster, "names-server", ("Running",))
    cluster.kubectl(
        "wait", "--for=condition=Ready", "pod/names-server", "-n", NAMESPACE, "--timeout=60s"
    )
    _apply(cluster, _pod("names-client", ["python", "-c", fetch]))
    phase = _wait_phase(cluster, "names-client", ("Succeeded", "Failed"))
    logs = cluster.kubectl("logs", "names-client", "-n", NAMESPACE).stdout
    assert phase == "Succeeded", logs
    assert "names.contract.svc.cluster.local 200" in logs


def test_the_real_scheduler_places_pods_by_the_nodes_gpu_capacity(cluster: Cluster) -> None:
    if cluster.control_plane != "real":
        pytest.skip("localkube's kubelet binds every pod itself; there is no scheduler")
    gpu = {"limits": {"nvidia.com/gpu": "1"}}
    too_many = {"limits": {"nvidia.com/gpu": "9"}}
    fits = _pod("gpu-fits", ["python", "-c", "print('on a gpu node')"], resources=gpu)
    waits = _pod("gpu-waits", ["python", "-c", "print('never')"], resources=too_many)
    _apply(cluster, fits, waits)
    assert _wait_phase(cluster, "gpu-fits", ("Succeeded", "Failed")) == "Succeeded"
    time.sleep(2)
    assert _phase(cluster, "gpu-waits") == "Pending"
    events = cluster.kubectl(
        "get", "events", "-n", NAMESPACE, "--field-selector", "involvedObject.name=gpu-waits"
    ).stdout
    assert "FailedScheduling" in events and "nvidia.com/gpu" in events, events
