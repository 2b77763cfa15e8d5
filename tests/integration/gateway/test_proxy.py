"""The gateway against fake pods on loopback: routing, streaming, retries, holding, metrics."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.integration.gateway.conftest import FakePod, free_port

pytestmark = pytest.mark.timeout(60)


async def sse(fake: FakePod, request: web.Request, chunks: int = 5, gate: Any = None) -> Any:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for i in range(chunks):
        await resp.write(f"data: {json.dumps({'i': i, 'pod': fake.name})}\n\n".encode())
        if i == 0 and gate is not None:
            await gate.wait()
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


async def unavailable(fake: FakePod, request: web.Request) -> web.StreamResponse:
    return web.json_response({"error": {"message": "draining"}}, status=503)


async def test_completion_goes_to_a_ready_pod_of_the_production_release(make_harness) -> None:
    h = await make_harness()
    h.add_llm("bot", [("3", "bot", 100)])
    fake = await h.add_pod("bot", "3")
    await h.add_pod("bot", "2")  # an old release's pod: not behind the route's Service
    status, headers, body = await h.complete("bot", id=1)
    assert status == 200
    assert body["pod"] == fake.name
    assert fake.headers[0]["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Kubellm-Release"] == "3"  # the client can tell which version answered


async def test_namespace_slash_name_reaches_the_pod_as_the_plain_name(make_harness) -> None:
    h = await make_harness()
    h.add_llm("bot", [("1", "bot", 100)], ns="team-a")
    h.add_llm("bot", [("1", "bot", 100)], ns="team-b")
    fake = await h.add_pod("bot", "1", ns="team-b")
    status, _, body = await h.complete("team-b/bot")
    assert status == 200 and body["model"] == "bot" and body["pod"] == fake.name
    status, _, body = await h.complete("bot")
    assert status == 400 and body["error"]["code"] == "model_ambiguous"
    assert "team-a/bot" in body["error"]["message"]


async def test_unknown_model_no_model_and_no_release_are_answered_in_openai_form(
    make_harness,
) -> None:
    h = await make_harness()
    h.catalog.apply("LLM", "ADDED", {"metadata": {"name": "fresh", "namespace": "default"}})
    status, _, body = await h.complete("nobody")
    assert (status, body["error"]["code"]) == (404, "model_not_found")
    status, headers, body = await h.complete("fresh")
    assert (status, body["error"]["code"]) == (503, "model_not_ready")
    assert headers["Retry-After"] == "5"
    async with h.client.post(h.url + "/v1/completions", data=b"not json") as resp:
        assert resp.status == 400
    # nested too deep for the JSON parser: the client's mistake (400), not the gateway's (500)
    async with h.client.post(h.url + "/v1/completions", data=b"[" * 100_000) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"
    async with h.client.post(h.url + "/v1/completions", json={"prompt": "x"}) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "model_required"


async def test_traffic_is_split_by_the_weights_in_status(make_harness) -> None:
    draws = itertools.cycle([i / 20 for i in range(20)])
    h = await make_harness(rng=lambda: next(draws))
    h.add_llm("bot", [("3", "bot", 75), ("4", "bot-candidate", 25)])
    prod = await h.add_pod("bot", "3")
    canary = await h.add_pod("bot", "4")
    for _ in range(40):
        assert (await h.complete("bot"))[0] == 200
    assert (len(prod.received), len(canary.received)) == (30, 10)
    metrics = await (await h.client.get(h.admin_url + "/metrics")).text()
    assert 'kubellm_gateway_requests_total{code="200",llm="default/bot",release="4"} 10.0' in (
        metrics
    )


async def test_models_lists_every_llm_with_its_releases(make_harness) -> None:
    h = await make_harness()
    h.add_llm("bot", [("3", "bot", 100)])
    h.add_llm("writer", [("1", "writer", 100)], ns="team-b")
    await h.add_pod("bot", "3")
    async with h.client.get(h.url + "/v1/models") as resp:
        body = await resp.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["bot", "writer"]
    bot = body["data"][0]
    assert bot["kubellm"]["releases"] == [{"version": "3", "weight": 100, "readyReplicas": 1}]
    async with h.client.get(h.url + "/v1/models/team-b/writer") as resp:
        assert resp.status == 200 and (await resp.json())["id"] == "writer"


async def test_stream_chunks_reach_the_client_before_the_answer_is_complete(
    make_harness,
) -> None:
    gate = asyncio.Event()
    h = await make_harness()
    h.add_llm("bot", [("1", "bot", 100)])
    await h.add_pod("bot", "1", lambda f, r: sse(f, r, gate=gate))
    async with h.client.post(
        h.url + "/v1/completions", json={"model": "bot", "prompt": "x", "stream": True}
    ) as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
        assert json.loads(first[len(b"data: ") :])["i"] == 0  # the pod is still blocked
        gate.set()
        rest = await resp.read()
    assert rest.count(b"data: ") == 5 and rest.endswith(b"data: [DONE]\n\n")


async def test_a_client_that_disconnects_disconnects_the_pod(make_harness) -> None:
    gate = asyncio.Event()  # never set: the pod streams one chunk and waits
    h = await make_harness()
    h.add_llm("bot", [("1", "bot", 100)])
    fake = await h.add_pod("bot", "1", lambda f, r: sse(f, r, chunks=1000, gate=gate))
    resp = await h.client.post(
        h.url + "/v1/completions", json={"model": "bot", "prompt": "x", "stream": True}
    )
    await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
    resp.close()  # the client goes away mid-stream
    await asyncio.wait_for(fake.disconnected.wait(), 5)
    await asyncio.sleep(0.1)
    report = (await (await h.client.get(h.admin_url + "/demand")).json())["llms"]["default/bot"]
    assert report["inflight"] == 0


async def test_slow_reader_slows_the_pod_instead_of_filling_memory(make_harness) -> None:
    written = 0
    total = 256 * 1024 * 1024

    async def flood(fake: FakePod, request: web.Request) -> web.StreamResponse:
        nonlocal written
        resp = web.StreamResponse()
        await resp.prepare(request)
        chunk = b"x" * (1024 * 1024)
        while written < total:
            await resp.write(chunk)
            written += len(chunk)
        await resp.write_eof()
        return resp

    h = await make_harness()
    h.add_llm("bot", [("1", "bot", 100)])
    await h.add_pod("bot", "1", flood)
    async with h.client.post(h.url + "/v1/completions", json={"model": "bot"}) as resp:
        await resp.content.readexactly(1024)
        await asyncio.sleep(1.0)  # a reader that stalls
        stalled_at = written
        assert stalled_at < 64 * 1024 * 1024, stalled_at
        received = 1024
        async for chunk in resp.content.iter_any():
            received += len(chunk)
    assert received == total


async def test_refused_connection_is_retried_on_another_pod(make_harness) -> None:
    h = await make_harness()
    h.add_llm("bot", [("1", "bot", 100)])
    dead = await h.add_pod("bot", "1", started=False)  # ready in the catalog, nothing listens
    live = await h.add_pod("bot", "1")
    for _ in range(4):
        status, _, body = await h.complete("bot")
        assert status == 200 and body["pod"] == live.name
    metrics = await (await h.client.get(h.admin_url + "/metrics")).text()
    assert 'kubellm_gateway_retries_total{llm="default/bot",reason="connect"}' in metrics
    assert dead.received == []


async def test_a_503_from_a_draining_pod_is_retried_once_on_another(make_harness) -> None:
    h = await make_harness()
    h.add_llm("bot", [("1", "bot", 100)])
    draining = await h.add_pod("bot", "1", unavailable)
    live = await h.add_pod("bot", "1")
    for _ in range(4):
        status, _, body = await h.complete("bot")
        assert status == 200 and body["pod"] == live.name
    assert len(draining.received) >= 1


async def test_a_503_with_no_other_pod_is_passed_through(make_harness) -> None:
    h = await make_harness()
    h.add_llm("bot", [("1", "bot", 100)])
    only = await h.add_pod("bot", "1", unavailable)
    status, _, body = await h.complete("bot")
    assert status == 503 and body["error"]["message"] == "draining"
    assert len(only.received) == 1


async def test_no_retry_once_the_answer_started(make_harness) -> None:
    async def dies(fake: FakePod, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: {}\n\n")
        assert request.transport is not None
        request.transport.abort()  # the pod crashes mid-answer
        return resp

    h = await make_harness()
    h.add_llm("bot", [("1", "bot", 100)])
    first = await h.add_pod("bot", "1", dies)
    second = await h.add_pod("bot", "1", dies)
    with pytest.raises(aiohttp.ClientPayloadError):
        async with h.client.post(
            h.url + "/v1/completions", json={"model": "bot", "stream": True}
        ) as resp:
            await resp.read()
    assert len(first.received) + len(second.received) == 1


async def test_requests_at_zero_are_held_then_forwarded_in_order(make_harness) -> None:
    h = await make_harness()
    h.add_llm("bot", [("1", "bot", 100)])
    fake = await h.add_pod("bot", "1", ready=False)  # scaled from zero, not ready yet
    tasks = []
    for i in range(16):
        tasks.append(asyncio.create_task(h.complete("bot", id=i)))
        while h.gateway.traffic.held("default/bot") < i + 1:
            await asyncio.sleep(0.005)
    demand = (await (await h.client.get(h.admin_url + "/demand")).json())["llms"]["default/bot"]
    assert demand["held"] == 16 and demand["inflight"] == 0
    await asyncio.sleep(0.3)
    h.set_pod(fake, "bot", "1", ready=True)
    results = await asyncio.gather(*tasks)
    assert [status for status, _, _ in results] == [200] * 16
    assert [r["id"] for r in fake.received] == list(range(16))
    demand = (await (await h.client.get(h.admin_url + "/demand")).json())["llms"]["default/bot"]
    assert demand["held"] == 0 and demand["coldStarts"] == 1
    assert demand["lastColdStartSeconds"] >= 0.3
    metrics = await (await h.client.get(h.admin_url + "/metrics")).text()
    assert 'kubellm_gateway_cold_starts_total{llm="default/bot"} 1.0' in metrics


async def test_a_held_request_times_out_with_503_and_retry_after(make_harness) -> None:
    h = await make_harness(hold_timeout=0.3)
    h.add_llm("bot", [("1", "bot", 100)])
    started = time.monotonic()
    status, headers, body = await h.complete("bot")
    assert status == 503 and body["error"]["code"] == "model_starting"
    assert 0.3 <= time.monotonic() - started < 2
    assert int(headers["Retry-After"]) >= 1
    assert h.gateway.traffic.held("default/bot") == 0


async def test_the_hold_queue_is_bounded_per_llm(make_harness) -> None:
    h = await make_harness(max_held=2, hold_timeout=5)
    h.add_llm("bot", [("1", "bot", 100)])
    waiting = [asyncio.create_task(h.complete("bot")) for _ in range(2)]
    while h.gateway.traffic.held("default/bot") < 2:
        await asyncio.sleep(0.005)
    status, _, body = await h.complete("bot")
    assert status == 503 and body["error"]["code"] == "too_many_held_requests"
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


async def test_a_held_client_that_leaves_frees_its_place(make_harness) -> None:
    h = await make_harness(hold_timeout=30)
    h.add_llm("bot", [("1", "bot", 100)])
    task = asyncio.create_task(h.complete("bot"))
    while h.gateway.traffic.held("default/bot") < 1:
        await asyncio.sleep(0.005)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    for _ in range(100):
        if h.gateway.traffic.held("default/bot") == 0:
            break
        await asyncio.sleep(0.01)
    assert h.gateway.traffic.held("default/bot") == 0


async def test_demand_long_poll_wakes_when_a_request_is_held(make_harness) -> None:
    h = await make_harness(hold_timeout=30)
    h.add_llm("bot", [("1", "bot", 100)])
    seq = (await (await h.client.get(h.admin_url + "/demand")).json())["seq"]
    started = time.monotonic()
    instance = h.gateway.traffic.instance
    poll = asyncio.create_task(
        h.client.get(h.admin_url + f"/demand?instance={instance}&after={seq}&wait=20")
    )
    await asyncio.sleep(0.2)
    assert not poll.done()
    held = asyncio.create_task(h.complete("bot"))
    resp = await asyncio.wait_for(poll, 5)
    report = await resp.json()
    assert time.monotonic() - started < 5
    assert report["seq"] > seq and report["llms"]["default/bot"]["held"] == 1
    held.cancel()
    await asyncio.gather(held, return_exceptions=True)


async def test_demand_long_poll_answers_at_once_for_another_instance(make_harness) -> None:
    """A restarted gateway numbers its changes from 0 again: a poller that names the old
    instance gets the new state at once instead of waiting for a seq it never reaches."""
    h = await make_harness()
    started = time.monotonic()
    async with h.client.get(h.admin_url + "/demand?instance=gone&after=999&wait=20") as resp:
        report = await resp.json()
    assert time.monotonic() - started < 5
    assert report["instance"] == h.gateway.traffic.instance


async def test_readiness_waits_for_the_first_lists(make_harness) -> None:
    h = await make_harness()
    async with h.client.get(h.admin_url + "/readyz") as resp:
        assert resp.status == 200
    h.catalog.synced.discard("Pod")
    async with h.client.get(h.admin_url + "/readyz") as resp:
        assert resp.status == 503 and (await resp.json())["waitingFor"] == ["Pod"]


async def test_unknown_paths_are_openai_errors(make_harness) -> None:
    h = await make_harness()
    async with h.client.post(h.url + "/v1/embeddings", json={}) as resp:
        assert resp.status == 404 and "error" in await resp.json()


def test_free_port_helper_gives_distinct_ports() -> None:
    assert free_port() != 0
