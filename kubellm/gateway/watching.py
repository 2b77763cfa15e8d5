"""List and watch LLMs, Services and serving Pods into the gateway's `Catalog`.

A small reflector per kind and namespace scope, on aiohttp (the gateway's event loop, no
threads): list, then watch from the list's resourceVersion with bookmarks; a watch that
ends is resumed from the last version seen; "410 Gone" or any error re-lists after a short
back-off, so the catalog converges whatever was missed. Connection settings (server, CA,
client certificate, bearer token with its refresh hook) come from the official client's
configuration loader: in-cluster service account first, else the kubeconfig.

Only what routing needs is watched: Pods labelled ``kubellm.dev/component=serving`` and
Services labelled ``app.kubernetes.io/managed-by=kubellm``. Reads only: the gateway's
ServiceAccount needs get/list/watch on llms, services and pods, nothing else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from kubellm.api.rest import LLMS, PODS, SERVICES, ApiError, Resource, WatchExpired
from kubellm.gateway.catalog import Catalog
from kubellm.operator.naming import LABEL_COMPONENT, LABEL_MANAGED_BY, MANAGED_BY, Component

__all__ = ["KINDS", "KubeWatchClient", "WatchedKind", "reflect", "watch_all"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchedKind:
    resource: Resource
    label_selector: str | None = None

    @property
    def kind(self) -> str:
        return self.resource.kind

    def path(self, namespace: str | None) -> str:
        return self.resource.path(namespace)


KINDS: tuple[WatchedKind, ...] = (
    WatchedKind(LLMS),
    WatchedKind(SERVICES, f"{LABEL_MANAGED_BY}={MANAGED_BY}"),
    WatchedKind(PODS, f"{LABEL_COMPONENT}={Component.SERVING}"),
)


class KubeWatchClient:
    """Just enough of the Kubernetes API for list and watch, on one aiohttp session."""

    def __init__(
        self,
        host: str,
        ssl_context: ssl.SSLContext | bool,
        headers: Callable[[], dict[str, str]],
    ) -> None:
        self.host = host.rstrip("/")
        self._ssl = ssl_context
        self._headers = headers
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None) -> KubeWatchClient:
        """In-cluster config, else the kubeconfig (``kubeconfig``, ``$KUBECONFIG`` as set now,
        or ~/.kube/config)."""
        from kubernetes import client, config

        cfg = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=cfg)
        except config.ConfigException:
            path = kubeconfig or os.environ.get("KUBECONFIG") or None
            config.load_kube_config(config_file=path, client_configuration=cfg)
        context: ssl.SSLContext | bool
        if not cfg.verify_ssl:
            context = False
        else:
            context = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
            if cfg.cert_file and cfg.key_file:
                context.load_cert_chain(cfg.cert_file, cfg.key_file)

        def headers() -> dict[str, str]:
            out = {"Accept": "application/json", "User-Agent": "kubellm-gateway"}
            settings: Any = cfg.auth_settings()
            for setting in settings.values():
                if setting.get("in") == "header" and setting.get("value"):
                    out[str(setting["key"])] = str(setting["value"])
            return out

        return cls(cfg.host, context, headers)

    async def __aenter__(self) -> KubeWatchClient:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *_: Any) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _params(self, selector: str | None, **extra: str) -> dict[str, str]:
        params = dict(extra)
        if selector:
            params["labelSelector"] = selector
        return params

    async def list(self, path: str, selector: str | None) -> tuple[list[dict[str, Any]], str]:
        assert self._session is not None
        async with self._session.get(
            self.host + path,
            params=self._params(selector),
            headers=self._headers(),
            ssl=self._ssl,
            timeout=aiohttp.ClientTimeout(total=60),
        ) as resp:
            if resp.status != 200:
                text = await resp.text()
                raise ApiError.from_response(
                    resp.status, text, resp.reason or "", method="LIST", path=path
                )
            data = await resp.json()
        version = str((data.get("metadata") or {}).get("resourceVersion") or "")
        return list(data.get("items") or []), version

    async def watch(
        self, path: str, selector: str | None, version: str, timeout: int = 300
    ) -> AsyncIterator[dict[str, Any]]:
        assert self._session is not None
        params = self._params(
            selector,
            watch="true",
            resourceVersion=version,
            allowWatchBookmarks="true",
            timeoutSeconds=str(timeout),
        )
        async with self._session.get(
            self.host + path,
            params=params,
            headers=self._headers(),
            ssl=self._ssl,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout + 30),
        ) as resp:
            if resp.status == 410:
                raise WatchExpired(path)
            if resp.status != 200:
                text = await resp.text()
                raise ApiError.from_response(
                    resp.status, text, resp.reason or "", method="WATCH", path=path
                )
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)


async def reflect(
    client: KubeWatchClient,
    watched: WatchedKind,
    namespace: str | None,
    catalog: Catalog,
    listed: asyncio.Event,
    backoff: float = 1.0,
) -> None:
    """Keep ``catalog`` current for one kind in one scope (None: all namespaces); sets
    ``listed`` once the first list is in. Runs until cancelled."""
    path = watched.path(namespace)
    version: str | None = None
    while True:
        try:
            if version is None:
                items, version = await client.list(path, watched.label_selector)
                catalog.replace(watched.kind, items, namespace)
                listed.set()
            async for event in client.watch(path, watched.label_selector, version):
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise WatchExpired(path)
                    code = int(obj.get("code") or 500)
                    raise ApiError.from_response(code, obj, method="WATCH", path=path)
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    catalog.apply(watched.kind, kind, obj)
        except asyncio.CancelledError:
            raise
        except WatchExpired:
            version = None
        except Exception as exc:
            log.warning("%s: %s; listing again in %.0f s", path, exc, backoff)
            version = None
            await asyncio.sleep(backoff)


async def watch_all(
    client: KubeWatchClient, catalog: Catalog, namespaces: Sequence[str] = ()
) -> list[asyncio.Task[None]]:
    """Start a reflector per kind and scope; each kind is marked synced in the catalog
    once its first lists are in (the gateway is ready then). Cancel the tasks to stop."""
    scopes: Sequence[str | None] = list(namespaces) or [None]
    tasks: list[asyncio.Task[None]] = []
    for watched in KINDS:
        events = []
        for scope in scopes:
            listed = asyncio.Event()
            events.append(listed)
            tasks.append(asyncio.create_task(reflect(client, watched, scope, catalog, listed)))

        async def mark(kind: str = watched.kind, events: list[asyncio.Event] = events) -> None:
            await asyncio.gather(*(e.wait() for e in events))
            catalog.mark_synced(kind)

        tasks.append(asyncio.create_task(mark()))
    return tasks
