"""Requests held for an LLM at zero go out as soon as its starting pod passes its own
readiness check, which the gateway runs itself: before the kubelet reports the pod Ready."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from kubellm.gateway.proxy import serve
from tests.integration.gateway.conftest import bound_port
from tests.unit.gateway.objects import pod

pytestmark = pytest.mark.timeout(60)


async def _starting_pod(ready: asyncio.Event, checks: list[str]) -> web.AppRunner:
    async def readyz(request: web.Request) -> web.Response:
        checks.append(request.path)
        return web.Response(status=200 if ready.is_set() else 503)

    async def complete(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"id": body.get("id"), "object": "text_completion"})

    app = web.Application()
    app.router.add_get("/readyz", readyz)
    app.router.add_post("/v1/completions", complete)
    return await serve(app, "127.0.0.1", 0)


def _pod_object(port: int) -> dict:
    obj = pod("bot-v1-a", "bot", "1", "127.0.0.1", ready=False, port=port)
    obj["spec"]["containers"][0]["readinessProbe"] = {
        "httpGet": {"path": "/readyz", "port": "http"},
        "periodSeconds": 1,
    }
    return obj


async def test_held_requests_go_out_when_the_starting_pod_turns_ready(make_harness) -> None:
    h = await make_harness(probe_interval=0.05)
    h.add_llm("bot", [("1", "bot", 100)])
    ready, checks = asyncio.Event(), []
    runner = await _starting_pod(ready, checks)
    try:
        h.catalog.apply("Pod", "ADDED", _pod_object(bound_port(runner)))
        tasks = [asyncio.create_task(h.complete("bot", id=i)) for i in range(3)]
        while len(checks) < 3:  # held, and the pod is being checked: not ready yet
            await asyncio.sleep(0.01)
        assert h.gateway.traffic.held("default/bot") == 3
        ready.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks), 5)
        assert [(status, body["id"]) for status, _, body in results] == [(200, i) for i in range(3)]
        # the catalog still has the pod not Ready: the gateway's own check let them through
        assert not h.catalog.pods[("default", "bot-v1-a")].ready
        checked = len(checks)
        await asyncio.sleep(0.3)
        assert len(checks) == checked  # nobody waits: no more checks
    finally:
        await runner.cleanup()


async def test_without_the_gateways_checks_requests_wait_for_the_kubelet(make_harness) -> None:
    h = await make_harness(probe_interval=0)
    h.add_llm("bot", [("1", "bot", 100)])
    ready, checks = asyncio.Event(), []
    ready.set()
    runner = await _starting_pod(ready, checks)
    try:
        obj = _pod_object(bound_port(runner))
        h.catalog.apply("Pod", "ADDED", obj)
        task = asyncio.create_task(h.complete("bot", id=7))
        await asyncio.sleep(0.3)
        assert not task.done() and checks == []
        obj["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
        h.catalog.apply("Pod", "MODIFIED", obj)
        status, _, body = await asyncio.wait_for(task, 5)
        assert (status, body["id"]) == (200, 7)
    finally:
        await runner.cleanup()
