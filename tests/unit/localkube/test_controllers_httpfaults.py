"""The http-errors pod fault: its rule, the kubelet's fault files, the pod site's wrapper."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from localkube.controllers.dns import PODSITE
from localkube.controllers.faults import PodFault, PodFaults, parse_annotation
from localkube.controllers.httpfaults import HttpFaultFiles, fault_file, probe_paths, wanted


def _podsite() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "podsite_http_faults_test", PODSITE / "localkube_http_faults.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pod(labels: dict[str, str] | None = None, annotation: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web-1", "namespace": "ns", "labels": labels or {}}
    if annotation:
        meta["annotations"] = {"localkube.kubellm.dev/fault": annotation}
    return {"metadata": meta, "spec": {}}


CONTAINER = {
    "name": "server",
    "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
    "livenessProbe": {"httpGet": {"path": "/healthz?full=1", "port": "http"}},
    "startupProbe": {"exec": {"command": ["true"]}},
}


def test_http_errors_annotation_reads_rate_and_status_and_rejects_bad_values() -> None:
    fault = parse_annotation("http-errors:rate=0.3,status=503")
    assert fault is not None and (fault.kind, fault.rate, fault.status) == ("http-errors", 0.3, 503)
    default = parse_annotation("http-errors:rate=1")
    assert default is not None and default.status == 500
    assert parse_annotation("http-errors:rate=1.5") is None
    assert parse_annotation("http-errors:rate=0.5,status=42") is None


def test_http_errors_fault_from_json_takes_rate_and_status_but_no_times() -> None:
    fault = PodFault.from_dict({"kind": "http-errors", "labels": {"v": "2"}, "rate": "0.25"})
    assert (fault.rate, fault.status, fault.labels) == (0.25, 500, {"v": "2"})
    with pytest.raises(ValueError, match="no times"):
        PodFault.from_dict({"kind": "http-errors", "rate": 0.5, "times": 1})
    with pytest.raises(ValueError, match=r"0\.\.1"):
        PodFault.from_dict({"kind": "http-errors", "rate": -0.1})


def test_active_http_fault_matches_labels_without_counting_and_annotation_first() -> None:
    faults = PodFaults()
    added = faults.add(kind="http-errors", labels={"version": "2"}, rate=0.3)
    faults.add(kind="crash", labels={"version": "2"})
    for _ in range(3):  # looked up again and again: nothing is used up
        assert faults.active(_pod({"version": "2"}), "server", "http-errors") is added
    assert faults.active(_pod({"version": "1"}), "server", "http-errors") is None
    annotated = faults.active(_pod({"version": "2"}, "http-errors:rate=1"), "server", "http-errors")
    assert annotated is not None and annotated.rate == 1.0
    assert faults.take(_pod({"version": "2"}), "server", ("crash", "exit")) is not None
    faults.clear(added.id)
    assert faults.active(_pod({"version": "2"}), "server", "http-errors") is None


def test_fault_file_content_exempts_the_containers_probe_paths() -> None:
    assert probe_paths(CONTAINER) == ["/healthz", "/readyz"]
    faults = PodFaults()
    assert wanted(faults, _pod(), CONTAINER) == {}
    fault = faults.add(kind="http-errors", namespace="ns", rate=0.3, status=503)
    assert wanted(faults, _pod(), CONTAINER) == {
        "kind": "http-errors",
        "id": fault.id,
        "rate": 0.3,
        "status": 503,
        "exempt": ["/healthz", "/readyz"],
    }
    assert wanted(faults, _pod(), {**CONTAINER, "name": "other"}) != {}
    faults.clear()
    faults.add(kind="http-errors", namespace="ns", container="other", rate=0.3)
    assert wanted(faults, _pod(), CONTAINER) == {}


def test_kubelet_rewrites_a_running_containers_fault_file_when_faults_change(
    tmp_path: Path,
) -> None:
    faults = PodFaults()
    files = HttpFaultFiles(faults)
    path = fault_file(tmp_path, "server")
    files.sync_pod(tmp_path, _pod(), [CONTAINER])
    assert json.loads(path.read_text()) == {}
    fault = faults.add(kind="http-errors", rate=0.5)
    files.sync_pod(tmp_path, _pod(), [CONTAINER])
    assert json.loads(path.read_text())["rate"] == 0.5
    before = os.stat(path)
    files.sync_pod(tmp_path, _pod(), [CONTAINER])  # unchanged: not rewritten
    assert os.stat(path).st_ino == before.st_ino
    faults.clear(fault.id)
    files.sync_pod(tmp_path, _pod(), [CONTAINER])
    assert json.loads(path.read_text()) == {}


def test_a_share_of_requests_fails_exactly_and_evenly_and_probe_paths_never(
    tmp_path: Path,
) -> None:
    site = _podsite()
    path = tmp_path / "server.json"
    faults = site.FaultFile(str(path))
    assert [faults.failure("/v1/completions") for _ in range(5)] == [None] * 5  # no file
    path.write_text(json.dumps({"rate": 0.3, "status": 503, "exempt": ["/readyz"]}))
    got = [faults.failure("/v1/completions") for _ in range(100)]
    assert got.count(503) == 30 and set(got) == {None, 503}
    assert all(got[i : i + 10].count(503) == 3 for i in range(0, 100, 10))  # spread evenly
    assert [faults.failure("/readyz") for _ in range(20)] == [None] * 20
    os.replace(_write(tmp_path, {"rate": 1.0, "status": 500, "exempt": []}), path)
    assert [faults.failure("/readyz") for _ in range(3)] == [500] * 3
    os.replace(_write(tmp_path, {}), path)
    assert faults.failure("/v1/completions") is None


def _write(tmp_path: Path, content: dict[str, Any]) -> Path:
    tmp = tmp_path / "next.json"
    tmp.write_text(json.dumps(content))
    return tmp


def test_the_asgi_wrapper_answers_failures_itself_and_passes_the_rest(tmp_path: Path) -> None:
    site = _podsite()
    path = tmp_path / "server.json"
    path.write_text(json.dumps({"rate": 0.5, "status": 503, "exempt": []}))
    called: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    wrapped = site.HttpFaultApp(app, site.FaultFile(str(path)))

    async def call(scope_type: str = "http") -> tuple[list[dict[str, Any]], int]:
        sent: list[dict[str, Any]] = []
        bodies = [{"body": b"a", "more_body": True}, {"body": b"b", "more_body": False}]

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", **bodies.pop(0)}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await wrapped({"type": scope_type, "path": "/x"}, receive, send)
        return sent, len(bodies)

    (first, _), (second, unread) = asyncio.run(call()), asyncio.run(call())
    assert first[0]["status"] == 200 and second[0]["status"] == 503
    assert unread == 0  # the failed request's body was read: the connection stays usable
    assert (b"x-localkube-fault", b"http-errors") in second[0]["headers"]
    assert json.loads(second[1]["body"])["error"]["code"] == 503
    assert called == ["/x"]
    asyncio.run(call("lifespan"))  # not HTTP: always the app's
    assert called == ["/x", "/x"]


def test_patched_uvicorn_config_wraps_the_app_it_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = _podsite()

    class Config:
        def __init__(self, app: Any) -> None:
            self.app = app

        def load(self) -> None:
            self.loaded_app = self.app

    monkeypatch.setenv("KUBELLM_HTTP_FAULTS", str(tmp_path / "server.json"))
    site.patch_uvicorn_config(SimpleNamespace(Config=Config))
    site.patch_uvicorn_config(SimpleNamespace(Config=Config))  # once only
    config = Config(app="the app")
    config.load()
    assert isinstance(config.loaded_app, site.HttpFaultApp)
    assert config.loaded_app.app == "the app"


def test_pod_site_hooks_uvicorn_only_in_containers_with_a_fault_file(tmp_path: Path) -> None:
    check = (
        "import uvicorn.config as c; "
        "print(getattr(c.Config.load, '_localkube_faults', False), 'uvicorn' in c.__name__)"
    )
    env = {**os.environ, "PYTHONPATH": str(PODSITE)}
    plain = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True)
    env["KUBELLM_HTTP_FAULTS"] = str(tmp_path / "server.json")
    hooked = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True)
    assert plain.stdout.split() == ["False", "True"], plain.stderr
    assert hooked.stdout.split() == ["True", "True"], hooked.stderr
