"""A starting pod that passed its own readiness check when the gateway ran it is an endpoint
until the kubelet's verdict arrives; only pods whose check is a plain HTTP GET qualify."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm.gateway.catalog import Catalog, PodView
from kubellm.gateway.routing import Endpoint
from tests.unit.gateway.objects import llm, pod, service

ROUTES = [{"version": "3", "service": "bot", "weight": 100}]
PROBE = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1}


def _probed(name: str, ip: str | None = "127.64.0.5", probe: Any = PROBE, **kw: Any) -> Any:
    obj = pod(name, "bot", "3", ip, **{"ready": False, **kw})
    if probe is not None:
        obj["spec"]["containers"][0]["readinessProbe"] = probe
    return obj


def _catalog() -> Catalog:
    c = Catalog()
    c.replace("LLM", [llm("bot", routes=ROUTES)])
    c.replace("Service", [service("bot", "bot", "3")])
    c.replace("Pod", [])
    return c


def _starting(c: Catalog) -> list[PodView]:
    return c.starting_pods(c.llms[("default", "bot")])


def test_a_vouched_starting_pod_is_an_endpoint_until_the_kubelet_speaks() -> None:
    c = _catalog()
    c.apply("Pod", "ADDED", _probed("a"))
    (starting,) = _starting(c)
    assert starting.readiness == ("/readyz", "http") and c.endpoints("default", "bot") == ()
    assert c.vouch(starting)
    assert c.endpoints("default", "bot") == (Endpoint("127.64.0.5", 8000, "a"),)
    assert _starting(c) == []  # checked no more
    c.apply("Pod", "MODIFIED", _probed("a", ready=True))
    assert not c.vouched and c.endpoints("default", "bot") == (Endpoint("127.64.0.5", 8000, "a"),)


@pytest.mark.parametrize("later", ["deleting", "other-ip", "deleted", "relisted-gone"])
def test_a_vouch_ends_with_the_pod_it_was_for(later: str) -> None:
    c = _catalog()
    c.apply("Pod", "ADDED", _probed("a"))
    assert c.vouch(_starting(c)[0])
    if later == "deleting":
        c.apply("Pod", "MODIFIED", _probed("a", deleting=True))
    elif later == "other-ip":
        c.apply("Pod", "MODIFIED", _probed("a", ip="127.64.0.9"))
    elif later == "deleted":
        c.apply("Pod", "DELETED", _probed("a"))
    else:
        c.replace("Pod", [])
    assert not c.vouched and c.endpoints("default", "bot") == ()


def test_a_vouch_for_a_pod_that_changed_meanwhile_is_refused() -> None:
    c = _catalog()
    c.apply("Pod", "ADDED", _probed("a"))
    seen = _starting(c)[0]
    c.apply("Pod", "MODIFIED", _probed("a", ip="127.64.0.9"))
    assert not c.vouch(seen) and c.endpoints("default", "bot") == ()


@pytest.mark.parametrize(
    "probe",
    [
        None,
        {"exec": {"command": ["true"]}},
        {"httpGet": {"path": "/readyz", "port": "http", "scheme": "HTTPS"}},
        {"httpGet": {"path": "/readyz", "port": 8000, "host": "10.0.0.1"}},
        {"httpGet": {"path": "/readyz", "port": 8000}, "successThreshold": 2},
    ],
)
def test_only_a_plain_http_check_passed_once_is_run_by_the_gateway(probe: Any) -> None:
    c = _catalog()
    c.apply("Pod", "ADDED", _probed("a", probe=probe))
    assert _starting(c) == []


def test_pods_of_other_versions_unrouted_or_not_running_are_not_checked() -> None:
    c = _catalog()
    c.apply("Pod", "ADDED", _probed("pending", ip=None))
    c.apply("Pod", "ADDED", _probed("init", phase="Pending"))
    other = _probed("old")
    other["metadata"]["labels"]["kubellm.dev/version"] = "2"
    c.apply("Pod", "ADDED", other)
    assert _starting(c) == []
    c.apply("Pod", "ADDED", _probed("ok", ip="127.64.0.7"))
    assert [p.name for p in _starting(c)] == ["ok"]
