"""One in-process localkube API server per module with the LLM CRD; a namespace per test.

Only the API server runs (no kubelet, no controllers, no kopf): what the operator reads
back is what it wrote plus what the test writes in the controllers' place (`world.World`).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client

from kubellm.api.crd import build_crd
from localkube.apiserver.threaded import ThreadedApiServer

from .world import World

_namespaces = itertools.count(1)


@pytest.fixture(scope="module")
def apiserver() -> Iterator[ThreadedApiServer]:
    with ThreadedApiServer() as server:
        crds = f"{server.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        httpx.post(crds, json=build_crd()).raise_for_status()
        yield server


def _client(server: ThreadedApiServer) -> Any:
    config = client.Configuration()
    config.host = server.url
    return client.ApiClient(config)


class Commits:
    """What the API server stored in one namespace: (event type, resource, name) per write,
    however the request reached it."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._lock = threading.Lock()
        self._seen: list[tuple[str, str, str]] = []

    def __call__(self, event: Any) -> None:  # a Store listener, on the server's loop
        meta = event.obj.get("metadata") or {}
        if meta.get("namespace") == self.namespace:
            with self._lock:
                self._seen.append((event.type, event.key, meta.get("name", "")))

    def take(self) -> list[tuple[str, str, str]]:
        with self._lock:
            out, self._seen = self._seen, []
        return out


@pytest.fixture
def world(apiserver: ThreadedApiServer) -> Iterator[World]:
    namespace = f"llms-{next(_namespaces)}"
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    httpx.post(f"{apiserver.url}/api/v1/namespaces", json=body).raise_for_status()
    with _client(apiserver) as operator_client, _client(apiserver) as world_client:
        try:
            yield World(namespace, operator_client, world_client)
        finally:
            apiserver.server.faults.clear()


@pytest.fixture
def commits(apiserver: ThreadedApiServer, world: World) -> Iterator[Commits]:
    recorder = Commits(world.namespace)
    listeners = apiserver.server.store.listeners
    apiserver.call(lambda: listeners.append(recorder))
    yield recorder
    apiserver.call(lambda: listeners.remove(recorder))
