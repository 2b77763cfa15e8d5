"""The operator's Kubernetes I/O: a small generic REST interface and its real implementation.

The reconciler needs a handful of verbs on a handful of kinds. Going through one generic
`KubeApi` (paths built from a kind table, JSON in and out) keeps every call visible in one
place (the RBAC of the Helm chart is checked against `CALLS`) and lets tests substitute an
in-memory double with the same methods. The real implementation rides on the official
`kubernetes` client's `ApiClient`, so kubeconfig, in-cluster config, TLS and auth are the
library's.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from kubellm.api.rest import RESOURCES, ApiError, Resource

__all__ = ["CALLS", "KINDS", "USER_AGENT", "ApiError", "KubeApi", "RestKubeApi"]

log = logging.getLogger(__name__)

#: how the operator's own calls show up in apiserver audit logs (kopf's say `kopf/<version>`)
USER_AGENT = "kubellm-operator"


#: the kinds the operator touches (their URLs are api/rest's, shared with the gateway)
KINDS: dict[str, Resource] = {
    kind: RESOURCES[kind]
    for kind in (
        "Job",
        "Deployment",
        "Service",
        "ConfigMap",
        "PersistentVolumeClaim",
        "HorizontalPodAutoscaler",
        "Pod",
        "Event",
        "LLM",
    )
}

#: (kind, verb) pairs the operator performs; the chart's RBAC must cover exactly these.
CALLS: frozenset[tuple[str, str]] = frozenset(
    {
        *(
            (k, v)
            for k in ("Job", "Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler")
            for v in ("list", "create", "patch", "delete")
        ),
        ("Pod", "list"),
        ("Pod", "log"),
        ("Event", "create"),
        ("LLM", "get"),
        ("LLM", "list"),
        ("LLM", "patch-status"),
    }
)


class KubeApi(Protocol):
    def list(
        self, kind: str, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]: ...

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        body: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]: ...

    def delete(self, kind: str, namespace: str, name: str) -> None: ...

    def pod_log(self, namespace: str, name: str, tail_lines: int) -> str: ...


class RestKubeApi:
    """`KubeApi` over the official client's ApiClient (kubeconfig or in-cluster)."""

    def __init__(self, api_client: Any | None = None) -> None:
        from kubernetes import client, config

        if api_client is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            api_client = client.ApiClient()
        api_client.user_agent = USER_AGENT
        self._api = api_client
        self._lock = threading.Lock()
        self.calls: set[tuple[str, str]] = set()

    def _record(self, kind: str, verb: str) -> None:
        with self._lock:
            self.calls.add((kind, verb))

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        raw: bool = False,
    ) -> Any:
        import json

        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            m, url, hdrs, payload, post = self._api.param_serialize(
                method=method,
                resource_path=path,
                query_params=query or [],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            resp = self._api.call_api(
                m, url, header_params=hdrs, body=payload, post_params=post, _request_timeout=30
            )
            data = resp.read()
        except ApiException as exc:
            raise ApiError(exc.status or 0, exc.reason or "", str(exc.body)[:500]) from exc
        text = data.decode() if isinstance(data, bytes) else str(data or "")
        if not 200 <= resp.status < 300:
            raise ApiError(resp.status, str(resp.reason or ""), text[:500])
        if raw:
            return text
        return json.loads(text) if text else {}

    def list(
        self, kind: str, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        self._record(kind, "list")
        query = [("labelSelector", label_selector)] if label_selector else []
        data = self._call("GET", KINDS[kind].path(namespace), query=query)
        return list(data.get("items") or [])

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self._record(kind, "get")
        try:
            data: dict[str, Any] = self._call("GET", f"{KINDS[kind].path(namespace)}/{name}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return data

    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self._record(kind, "create")
        data: dict[str, Any] = self._call("POST", KINDS[kind].path(namespace), body=body)
        return data

    def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        body: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        self._record(kind, "patch-status" if subresource == "status" else "patch")
        path = f"{KINDS[kind].path(namespace)}/{name}"
        if subresource:
            path += f"/{subresource}"
        data: dict[str, Any] = self._call(
            "PATCH", path, body=body, content_type="application/merge-patch+json"
        )
        return data

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self._record(kind, "delete")
        try:
            self._call(
                "DELETE",
                f"{KINDS[kind].path(namespace)}/{name}",
                body={"propagationPolicy": "Background"},
                query=[("propagationPolicy", "Background")],
            )
        except ApiError as exc:
            if exc.status != 404:
                raise

    def pod_log(self, namespace: str, name: str, tail_lines: int) -> str:
        self._record("Pod", "log")
        try:
            text = self._call(
                "GET",
                f"{KINDS['Pod'].path(namespace)}/{name}/log",
                query=[("tailLines", str(tail_lines))],
                raw=True,
            )
        except ApiError:
            return ""
        return str(text or "")
