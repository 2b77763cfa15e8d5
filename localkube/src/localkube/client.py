"""A small async Kubernetes API client for the localkube controllers.

The simulated controllers are API clients of the emulator, exactly like the real
kube-controller-manager and kubelet: they list, watch and patch over HTTP and never touch
the server's storage. That keeps the emulator honest (every controller write goes through
validation, resourceVersion and watch fan-out) and lets the controllers be pointed at any
server. The `kubernetes` package is synchronous and heavy, so this is a thin aiohttp layer
with just the verbs the controllers need. The table of kinds and the error are kubellm's
(`kubellm.api.rest`), shared with its operator and gateway.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from kubellm.api.rest import (
    CONFIGMAPS,
    DEPLOYMENTS,
    EVENTS,
    HPAS,
    JOBS,
    PODS,
    REPLICASETS,
    SECRETS,
    SERVICES,
    ApiError,
    Resource,
    WatchExpired,
)

__all__ = [
    "CONFIGMAPS",
    "DEPLOYMENTS",
    "EVENTS",
    "HPAS",
    "JOBS",
    "PODS",
    "REPLICASETS",
    "SECRETS",
    "SERVICES",
    "ApiError",
    "KubeClient",
    "Resource",
    "WatchExpired",
]

log = logging.getLogger(__name__)

JSON = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"


class KubeClient:
    """Async JSON client for one API server (bearer token and/or TLS client certificate)."""

    def __init__(
        self,
        base_url: str,
        *,
        user_agent: str = "localkube-controllers",
        ssl_context: ssl.SSLContext | None = None,
        token: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.user_agent = user_agent
        #: TLS with a client certificate for a real kube-apiserver (None: plain HTTP)
        self.ssl_context = ssl_context
        #: sent as `Authorization: Bearer <token>` (localkube's API server requires one)
        self.token = token
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.ssl_context or True),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=None, connect=5, sock_read=None),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float = 15.0,
    ) -> Any:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if body is not None else {}
        async with self.session.request(
            method,
            self.base_url + path,
            params=dict(params or {}),
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            text = await resp.text()
            try:
                decoded: Any = json.loads(text) if text else None
            except json.JSONDecodeError:
                decoded = text
            if resp.status >= 400:
                raise ApiError.from_response(
                    resp.status, decoded, resp.reason or "", method=method, path=path
                )
            return decoded

    async def get(self, res: Resource, namespace: str | None, name: str, sub: str = "") -> JSON:
        obj: JSON = await self.request("GET", res.path(namespace, name, sub))
        return obj

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[JSON], str]:
        params: dict[str, str] = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        body = await self.request("GET", res.path(namespace), params=params)
        items: list[JSON] = body.get("items") or []
        for item in items:  # list items carry no kind/apiVersion on a real server
            item.setdefault("kind", res.kind)
            item.setdefault("apiVersion", res.api_version)
        return items, str(body.get("metadata", {}).get("resourceVersion", ""))

    async def watch(
        self,
        res: Resource,
        resource_version: str,
        namespace: str | None = None,
        *,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[tuple[str, JSON]]:
        """Yield `(type, object)` until the server closes the stream.

        Raises :class:`WatchExpired` on an ERROR 410 event and :class:`ApiError` on other
        ERROR events, as the caller must then relist.
        """
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        async with self.session.get(
            self.base_url + res.path(namespace),
            params=params,
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=5, sock_read=timeout_seconds + 30
            ),
        ) as resp:
            if resp.status >= 400:
                raise ApiError.from_response(
                    resp.status,
                    await resp.text(),
                    resp.reason or "",
                    method="WATCH",
                    path=res.path(namespace),
                )
            async for raw in resp.content:
                line = raw.strip()
                if not line:
                    continue
                event = json.loads(line)
                etype = event.get("type", "")
                obj = event.get("object") or {}
                if etype == "ERROR":
                    if obj.get("code") == 410:
                        raise WatchExpired(obj.get("message", "expired"))
                    code = int(obj.get("code") or 500)
                    raise ApiError.from_response(
                        code, obj, method="WATCH", path=res.path(namespace)
                    )
                yield etype, obj

    async def create(self, res: Resource, namespace: str | None, body: JSON) -> JSON:
        obj: JSON = await self.request("POST", res.path(namespace), body=body)
        return obj

    async def patch(
        self, res: Resource, namespace: str | None, name: str, body: JSON, sub: str = ""
    ) -> JSON:
        """RFC 7386 merge patch (lists are replaced, `None` deletes a key)."""
        obj: JSON = await self.request(
            "PATCH", res.path(namespace, name, sub), body=body, content_type=MERGE_PATCH
        )
        return obj

    async def patch_status(
        self, res: Resource, namespace: str | None, name: str, status: JSON
    ) -> JSON:
        return await self.patch(res, namespace, name, {"status": status}, sub="status")

    async def delete(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        *,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
        uid: str | None = None,
    ) -> JSON | None:
        options: JSON = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if uid:
            options["preconditions"] = {"uid": uid}
        obj: JSON | None = await self.request("DELETE", res.path(namespace, name), body=options)
        return obj
