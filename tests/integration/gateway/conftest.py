"""Fake pods and a gateway on loopback, with the catalog fed directly (no cluster)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kubellm.gateway.catalog import Catalog
from kubellm.gateway.proxy import Gateway, GatewaySettings, build_admin_app, build_app, serve
from tests.unit.gateway.objects import llm, pod, service

Handler = Callable[["FakePod", web.Request], Awaitable[web.StreamResponse]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bound_port(runner: web.AppRunner) -> int:
    """The port a runner's site was bound to (after serving on port 0)."""
    return int(runner.addresses[0][1])


async def answer_ok(fake: FakePod, request: web.Request) -> web.StreamResponse:
    body = await request.json()
    return web.json_response(
        {"pod": fake.name, "model": body.get("model"), "id": body.get("id"), "object": "text"}
    )


@dataclass
class FakePod:
    """A pod's server: records what it got, answers with ``handler``."""

    name: str
    handler: Handler = answer_ok
    port: int = field(default_factory=free_port)
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None

    async def start(self) -> FakePod:
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            self.received.append(json.loads(body))
            self.headers.append(dict(request.headers))
            try:
                return await self.handler(self, request)
            except (asyncio.CancelledError, ConnectionResetError):
                self.disconnected.set()
                raise

        app = web.Application()
        app.router.add_post("/v1/completions", handle)
        app.router.add_post("/v1/chat/completions", handle)
        self.runner = await serve(app, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@dataclass
class Harness:
    catalog: Catalog
    gateway: Gateway
    url: str
    admin_url: str
    client: aiohttp.ClientSession
    pods: list[FakePod] = field(default_factory=list)

    def add_llm(self, name: str, routes: list[tuple[str, str, int]], ns: str = "default") -> None:
        self.catalog.apply(
            "LLM",
            "ADDED",
            llm(name, ns, [{"version": v, "service": s, "weight": w} for v, s, w in routes]),
        )
        for version, svc, _ in routes:
            self.catalog.apply("Service", "ADDED", service(svc, name, version, ns))

    async def add_pod(
        self,
        llm_name: str,
        version: str,
        handler: Handler = answer_ok,
        *,
        ready: bool = True,
        ns: str = "default",
        started: bool = True,
    ) -> FakePod:
        fake = FakePod(f"{llm_name}-v{version}-{len(self.pods)}", handler)
        if started:
            await fake.start()
        self.pods.append(fake)
        self.set_pod(fake, llm_name, version, ready=ready, ns=ns)
        return fake

    def set_pod(
        self, fake: FakePod, llm_name: str, version: str, *, ready: bool, ns: str = "default"
    ) -> None:
        obj = pod(fake.name, llm_name, version, "127.0.0.1", ready=ready, port=fake.port, ns=ns)
        self.catalog.apply("Pod", "MODIFIED", obj)

    async def complete(self, model: str, **extra: Any) -> tuple[int, dict[str, Any], Any]:
        async with self.client.post(
            self.url + "/v1/completions", json={"model": model, "prompt": "hi", **extra}
        ) as resp:
            return resp.status, dict(resp.headers), await resp.json()


@pytest.fixture
async def make_harness() -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    made: list[tuple[Harness, list[web.AppRunner]]] = []

    async def make(rng: Callable[[], float] | None = None, **settings: Any) -> Harness:
        catalog = Catalog()
        for kind in ("LLM", "Service", "Pod"):
            catalog.replace(kind, [])
            catalog.mark_synced(kind)
        kwargs = {"rng": rng} if rng else {}
        gateway = Gateway(catalog, GatewaySettings(**settings), **kwargs)
        await gateway.start()
        # Port 0: the kernel picks free ports at bind time (a port probed free beforehand
        # can be taken by another process before the bind, as seen on a busy machine).
        runners = [
            await serve(build_app(gateway), "127.0.0.1", 0),
            await serve(build_admin_app(gateway), "127.0.0.1", 0),
        ]
        port, admin_port = (bound_port(r) for r in runners)
        client = aiohttp.ClientSession()
        harness = Harness(
            catalog, gateway, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}", client
        )
        made.append((harness, runners))
        return harness

    yield make
    for harness, runners in made:
        await harness.client.close()
        for fake in harness.pods:
            await fake.stop()
        for runner in runners:
            await runner.cleanup()
        await harness.gateway.close()
