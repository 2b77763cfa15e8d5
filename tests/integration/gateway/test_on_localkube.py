"""The gateway's watches against a real API server (localkube): routes from an LLM's
status, endpoints from ready Pods, and a request held while its release scales from zero."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kubellm.api.identity import API_VERSION, KIND
from kubellm.gateway.catalog import Catalog
from kubellm.gateway.proxy import Gateway, GatewaySettings, build_app, serve
from kubellm.gateway.watching import KubeWatchClient, watch_all
from kubellm.operator.naming import Component, child_labels
from localkube.testing.localkube import Cluster, localkube  # noqa: F401  (session fixture)
from tests.integration.gateway.conftest import free_port
from tests.integration.localkube.controllers_support import apply, namespace

pytestmark = pytest.mark.timeout(240)

REPO = Path(__file__).resolve().parents[3]
FAKE_SERVER = REPO / "tests/integration/loadtests/fake_openai_server.py"
LABELS = child_labels("bot", Component.SERVING, "1")  # a serving pod, as the operator labels it


@pytest.fixture
def ns(localkube: Cluster):  # noqa: F811
    yield from namespace(localkube)


def kubectl(cluster: Cluster, *args: str, stdin: str | None = None) -> str:
    result = cluster.kubectl(*args, input=stdin)
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def fake_release(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bot-v1", "labels": dict(LABELS)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(LABELS)},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "containers": [
                        {
                            "name": "server",
                            "image": "kubellm",
                            "command": [
                                sys.executable,
                                str(FAKE_SERVER),
                                "--host",
                                "$(POD_IP)",
                                "--port",
                                "8000",
                            ],
                            "env": [
                                {
                                    "name": "POD_IP",
                                    "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                                }
                            ],
                            "ports": [{"name": "http", "containerPort": 8000}],
                            "readinessProbe": {
                                "httpGet": {"path": "/v1/models", "port": "http"},
                                "periodSeconds": 1,
                            },
                        }
                    ],
                },
            },
        },
    }


@pytest.fixture
async def gateway_on(localkube: Cluster, ns: str, monkeypatch) -> AsyncIterator[str]:  # noqa: F811
    kubectl(localkube, "apply", "-f", str(REPO / "charts/kubellm/crds/llms.kubellm.dev.yaml"))
    kubectl(localkube, "wait", "--for=condition=Established", "crd/llms.kubellm.dev")
    monkeypatch.setenv("KUBECONFIG", str(localkube.kubeconfig_path))
    catalog = Catalog()
    gateway = Gateway(catalog, GatewaySettings(hold_timeout=90))
    port = free_port()
    async with KubeWatchClient.from_environment() as client:
        await gateway.start()
        tasks = await watch_all(client, catalog, [ns])
        runner = await serve(build_app(gateway), "127.0.0.1", port)
        try:
            for _ in range(200):
                if gateway.ready:
                    break
                await asyncio.sleep(0.05)
            assert gateway.ready
            yield f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await gateway.close()


async def _wait(predicate: Any, what: str, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_gateway_routes_by_status_and_holds_while_a_release_scales_from_zero(
    localkube: Cluster,  # noqa: F811
    ns: str,
    gateway_on: str,
) -> None:
    manifest = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "bot"},
        "spec": {"model": {"registeredModel": "bot"}},
    }
    apply(localkube, ns, manifest)
    route = {"version": "1", "service": "bot", "weight": 100}
    status = {"status": {"serving": {"routes": [route]}}}
    kubectl(
        localkube,
        "patch",
        "llm",
        "bot",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "bot", "labels": {"app.kubernetes.io/managed-by": "kubellm"}},
        "spec": {"selector": dict(LABELS), "ports": [{"port": 8000, "targetPort": "http"}]},
    }
    apply(localkube, ns, service)
    apply(localkube, ns, fake_release(1))
    body = {"model": "bot", "prompt": "hello", "max_tokens": 4}

    async with aiohttp.ClientSession() as http:

        async def listed() -> bool:
            async with http.get(gateway_on + "/v1/models") as resp:
                data = (await resp.json())["data"]
            releases = data[0]["kubellm"]["releases"] if data else []
            return bool(releases) and releases[0]["readyReplicas"] == 1

        await _wait(listed, "the release's pod to be ready behind the gateway")
        async with http.post(gateway_on + "/v1/completions", json=body) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["choices"]

        kubectl(localkube, "scale", "deployment/bot-v1", "-n", ns, "--replicas=0")

        async def gone() -> bool:
            return not await listed()

        await _wait(gone, "the release to reach zero")
        held = asyncio.create_task(http.post(gateway_on + "/v1/completions", json=body))
        await asyncio.sleep(1.0)
        assert not held.done()  # held: no ready pod
        kubectl(localkube, "scale", "deployment/bot-v1", "-n", ns, "--replicas=1")
        resp = await asyncio.wait_for(held, 90)
        assert resp.status == 200, await resp.text()
        resp.release()
