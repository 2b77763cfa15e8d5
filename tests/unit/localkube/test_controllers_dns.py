"""Cluster names for pods: the records the kubelet writes and the resolver pods import."""

from __future__ import annotations

import importlib.util
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from localkube.controllers.dns import PODSITE, records


def _svc(name: str, ip: str, ns: str = "default", selector: dict[str, str] | None = None) -> Any:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"clusterIP": ip, "selector": selector or {}},
    }


def _pod(name: str, ip: str, labels: dict[str, str], ready: bool = True, **spec: str) -> Any:
    return {
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": spec,
        "status": {
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_services_resolve_to_cluster_ips_and_headless_ones_to_ready_pods() -> None:
    pods = [
        _pod("a", "127.64.0.5", {"app": "x"}),
        _pod("b", "127.64.0.6", {"app": "x"}, ready=False),
        _pod("t-0", "127.64.0.7", {"job": "t"}, hostname="t-0", subdomain="t"),
    ]
    got = records([_svc("web", "127.96.0.9"), _svc("x", "None", selector={"app": "x"})], pods)
    assert got["web.default.svc.cluster.local"] == ["127.96.0.9"]
    assert got["x.default.svc.cluster.local"] == ["127.64.0.5"]  # not-ready pod left out
    assert got["t-0.t.default.svc.cluster.local"] == ["127.64.0.7"]


def _resolver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, namespace: str) -> Any:
    path = tmp_path / "dns.json"
    path.write_text(json.dumps({"web.team-a.svc.cluster.local": ["127.96.0.9"]}))
    monkeypatch.setenv("KUBELLM_CLUSTER_DNS", str(path))
    monkeypatch.setenv("KUBELLM_POD_NAMESPACE", namespace)
    original = socket.getaddrinfo, socket.gethostbyname
    spec = importlib.util.spec_from_file_location("podsite_test", PODSITE / "sitecustomize.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    finally:
        socket.getaddrinfo, socket.gethostbyname = original
    return module


def test_pod_resolver_answers_short_and_qualified_names_with_its_namespace_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod = _resolver(tmp_path, monkeypatch, "team-a")
    for name in ("web", "web.team-a", "web.team-a.svc", "web.team-a.svc.cluster.local."):
        assert mod.cluster_lookup(name) == "127.96.0.9", name
    assert mod.cluster_lookup("other") is None
    assert mod.cluster_lookup("127.0.0.1") is None


def test_pod_resolver_does_not_answer_another_namespaces_short_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod = _resolver(tmp_path, monkeypatch, "team-b")
    assert mod.cluster_lookup("web") is None
    assert mod.cluster_lookup("web.team-a.svc") == "127.96.0.9"
