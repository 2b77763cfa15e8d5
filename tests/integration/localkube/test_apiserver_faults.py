"""Request-level fault injection (spec §13, API part), via Python and the admin endpoint."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .apiserver_fixtures import Kube, kube

__all__ = ["kube"]


def _http(kube: Kube, method: str, path: str, body: Any = None, **headers: str) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(kube.server.url + path, data=data, method=method)
    for k, v in headers.items():
        req.add_header(k.replace("_", "-"), v)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


@pytest.fixture
def core(kube: Kube) -> Any:
    api = kube.api_client()
    yield client.CoreV1Api(api)
    kube.server.call(kube.server.server.faults.clear)
    api.close()


def _cm(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": {"a": "1"}}


def test_next_n_matching_requests_fail_with_status_bodies(kube: Kube, core: Any) -> None:
    kube.server.call(
        lambda: kube.server.server.faults.add(verb="create", resource="configmaps", count=2)
    )
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            core.create_namespaced_config_map("default", _cm("f1"))
        assert err.value.status == 500
        assert json.loads(err.value.body)["reason"] == "InternalError"
    assert core.create_namespaced_config_map("default", _cm("f1")).metadata.name == "f1"


def test_429_carries_retry_after_header_and_details(kube: Kube) -> None:
    status, headers, _ = _http(
        kube,
        "POST",
        "/_localkube/faults",
        {"action": "add", "verb": "get", "resource": "configmaps", "code": 429, "retry_after": 3},
    )
    assert status == 200
    status, headers, body = _http(kube, "GET", "/api/v1/namespaces/default/configmaps/any")
    assert status == 429 and headers["Retry-After"] == "3"
    assert json.loads(body)["details"]["retryAfterSeconds"] == 3
    assert _http(kube, "GET", "/api/v1/namespaces/default/configmaps/any")[0] == 404


def test_faults_match_user_agent_content_type_and_subresource(kube: Kube, core: Any) -> None:
    core.create_namespaced_config_map("default", _cm("f2"))
    faults = kube.server.server.faults
    kube.server.call(lambda: faults.add(verb="patch", user_agent="kopf", code=409))
    kube.server.call(
        lambda: faults.add(verb="patch", content_type="json-patch", subresource="", code=422)
    )
    path = "/api/v1/namespaces/default/configmaps/f2"
    merge = {"Content-Type": "application/merge-patch+json"}
    assert _http(kube, "PATCH", path, {"data": {"b": "2"}}, **merge)[0] == 200
    assert (
        _http(kube, "PATCH", path, {"data": {"b": "3"}}, User_Agent="kopf/1.45.2", **merge)[0]
        == 409
    )
    jp = {"Content-Type": "application/json-patch+json"}
    ops = [{"op": "add", "path": "/data/c", "value": "4"}]
    assert _http(kube, "PATCH", path, ops, **jp)[0] == 422
    assert _http(kube, "PATCH", path, ops, **jp)[0] == 200


def test_delay_without_code_is_pure_latency_and_pause_hangs_requests(kube: Kube, core: Any) -> None:
    kube.server.call(lambda: kube.server.server.faults.add(verb="list", code=0, delay=0.4))
    start = time.monotonic()
    core.list_namespaced_config_map("default")
    assert time.monotonic() - start >= 0.4
    _http(kube, "POST", "/_localkube/faults", {"action": "pause", "seconds": 0.8})
    start = time.monotonic()
    core.list_namespaced_config_map("default")
    assert time.monotonic() - start >= 0.6
    assert _http(kube, "GET", "/_localkube/healthz")[2] == "ok"


def _watch_lines(kube: Kube, query: str, out: list[dict[str, Any]]) -> threading.Thread:
    def run() -> None:
        url = f"{kube.server.url}/api/v1/namespaces/default/configmaps?watch=true&{query}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            for line in resp:
                out.append(json.loads(line))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_cut_watch_ends_stream_and_expire_sends_error_410_event(kube: Kube, core: Any) -> None:
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    cut: list[dict[str, Any]] = []
    thread = _watch_lines(kube, f"resourceVersion={rv}", cut)
    time.sleep(0.3)
    core.create_namespaced_config_map("default", _cm("f3"))
    time.sleep(0.2)
    assert kube.server.call(lambda: kube.server.server.faults.cut_watches("configmaps")) >= 1
    thread.join(5)
    assert not thread.is_alive() and [e["type"] for e in cut] == ["ADDED"]

    expired: list[dict[str, Any]] = []
    thread = _watch_lines(kube, f"resourceVersion={rv}", expired)
    time.sleep(0.3)
    _http(
        kube, "POST", "/_localkube/faults", {"action": "expire_watches", "resource": "configmaps"}
    )
    thread.join(5)
    assert expired[-1]["type"] == "ERROR"
    assert expired[-1]["object"]["code"] == 410 and expired[-1]["object"]["reason"] == "Expired"

    again: list[dict[str, Any]] = []
    _watch_lines(kube, f"resourceVersion={rv}", again).join(5)  # HTTP 200, ERROR in-stream
    assert [e["type"] for e in again] == ["ERROR"]
    assert "too old resource version" in again[0]["object"]["message"]
