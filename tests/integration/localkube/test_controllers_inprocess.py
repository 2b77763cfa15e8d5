"""`LocalCluster` in-process: HPA on Resource cpu, the metric hook, and clean shutdown."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from localkube.client import DEPLOYMENTS, HPAS, PODS
from localkube.cluster import LocalCluster

pytest.importorskip("psutil")

BUSY = (  # about half a core
    "import time\n"
    "while True:\n"
    "    t = time.time()\n"
    "    while time.time() - t < 0.05: pass\n"
    "    time.sleep(0.05)\n"
)


def deployment(name: str, command: list[str], cpu: str = "100m") -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "c",
                            "image": "x",
                            "command": command,
                            "resources": {"requests": {"cpu": cpu}},
                        }
                    ],
                },
            },
        },
    }


def hpa(name: str, metric: dict) -> dict:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1,
            "maxReplicas": 2,
            "metrics": [metric],
        },
    }


async def wait_replicas(cluster: LocalCluster, name: str, want: int, timeout: float = 15) -> None:
    assert cluster.client is not None
    for _ in range(int(timeout / 0.1)):
        d = await cluster.client.get(DEPLOYMENTS, "default", name)
        if d["spec"]["replicas"] == want:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name} never reached {want} replicas")


async def test_hpa_scales_on_process_cpu_and_on_the_metric_hook(tmp_path: Path):
    cluster = LocalCluster(tmp_path, time_scale=0.05)
    async with cluster:
        client = cluster.client
        assert client is not None
        await client.create(DEPLOYMENTS, "default", deployment("busy", ["python", "-c", BUSY]))
        cpu = {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 100},
            },
        }
        await client.create(HPAS, "default", hpa("busy", cpu))
        await wait_replicas(cluster, "busy", 2)  # ~0.5 core used of 0.1 requested

        await client.create(DEPLOYMENTS, "default", deployment("idle", ["sleep", "30"]))
        queue = {
            "type": "Pods",
            "pods": {
                "metric": {"name": "queue"},
                "target": {"type": "AverageValue", "averageValue": "4"},
            },
        }
        await client.create(HPAS, "default", hpa("idle", queue))
        cluster.set_metric("default", "idle", "queue", 8)
        await wait_replicas(cluster, "idle", 2)
        assert cluster.kubelet is not None
        pids: list[int] = []
        for _ in range(100):
            pods, _ = await client.list(PODS, "default")
            pids = [
                pid for p in pods for pid in cluster.kubelet.pids("default", p["metadata"]["name"])
            ]
            if len(pids) == 4:
                break
            await asyncio.sleep(0.1)
        assert len(pids) == 4
    for pid in pids:  # stopping the cluster stopped every pod process
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
