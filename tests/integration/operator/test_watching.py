"""The post-promotion watch through the real reconciler: reader, planner, executor against an
in-process localkube API server, a registry in memory, and a stand-in gateway whose
``/traffic`` answers what the test says. Version 2, promoted over version 1 under
``postPromotion``, is watched while version 1 stays; once the gateway reports version 2
failing, one reconcile puts version 1 back behind the Service, the HPA and the alias, tags
version 2 and counts the rollback in the operator's metrics."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import REGISTRY

from kubellm.gateway.windows import ReleaseTraffic
from kubellm.gateway.windows import to_json as traffic_json
from kubellm.operator.naming import hpa_name, production_service_name
from kubellm.operator.planning.watching import ROLLED_BACK_TAG
from tests.unit.operator.test_canary_stages import _traffic

from .world import CONFIG, NAME, World


class _Gateway:
    """Answers ``/traffic`` with ``releases``; records each query."""

    def __init__(self) -> None:
        self.releases: dict[str, ReleaseTraffic] = {}
        self.queries: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.queries.append(self.path)
                body = json.dumps(traffic_json("fake", 0.0, owner.releases)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def gateway() -> Iterator[_Gateway]:
    gw = _Gateway()
    thread = threading.Thread(target=gw.server.serve_forever, daemon=True)
    thread.start()
    yield gw
    gw.server.shutdown()
    gw.server.server_close()


def _rollbacks(trigger: str) -> float:
    value = REGISTRY.get_sample_value("kubellm_operator_rollbacks_total", {"trigger": trigger})
    return value or 0.0


def _promote_v2(world: World) -> None:
    world.registry.aliases[(NAME, world.spec.rollout.candidate_alias)] = "2"
    world.reconcile()
    world.make_available(world.one("Deployment", "serving", "2"))
    world.reconcile()
    world.pass_load_test(version="2")
    for _ in range(4):
        world.reconcile()
        if (world.status().get("production") or {}).get("version") == "2":
            return
    raise AssertionError(f"version 2 not promoted: {world.status()}")


def test_a_breach_seen_by_the_gateway_rolls_production_back_in_one_reconcile(
    world: World, gateway: _Gateway
) -> None:
    world.manifest["spec"]["rollout"]["postPromotion"] = {
        "window": "10m",
        "interval": "5s",
        "minRequests": 10,
    }
    world.reconciler.config = replace(
        CONFIG, gateway_demand_url=gateway.url + "/demand", promotion_key="operator-only-key"
    )
    world.converge()  # version 1: a first version has nothing to go back to, no watch
    assert "watch" not in world.status()["production"]
    _promote_v2(world)

    gateway.releases = {"2": _traffic(40)}
    world.reconcile()
    status = world.status()
    watch = status["production"]["watch"]
    assert (watch["version"], watch["previous"], watch["state"]) == ("2", "1", "Watching")
    assert watch["requests"] == 40 and status["stage"].startswith("Watching 0m/10m")
    assert gateway.queries and f"llm={world.namespace}%2F{NAME}" in gateway.queries[-1]
    assert world.children("Deployment", "serving", "1")  # kept warm
    before = _rollbacks("watch")

    gateway.releases = {"2": _traffic(40, errors=12)}
    world.reconcile()

    status = world.status()
    assert status["production"]["version"] == "1"
    assert status["production"]["watch"]["state"] == "RolledBack"
    svc = world.kube.get("Service", world.namespace, production_service_name(NAME))
    assert svc is not None and svc["spec"]["selector"]["kubellm.dev/version"] == "1"
    hpa = world.kube.get("HorizontalPodAutoscaler", world.namespace, hpa_name(NAME))
    assert hpa is not None and hpa["spec"]["scaleTargetRef"]["name"] == f"{NAME}-v1"
    assert status["serving"]["routes"] == [{"version": "1", "service": NAME, "weight": 100}]
    assert world.registry.aliases[(NAME, world.spec.rollout.production_alias)] == "1"
    figures = json.loads(world.registry.tags[(NAME, "2")][ROLLED_BACK_TAG])
    assert (figures["to"], figures["requests"], figures["errorRate"]) == ("1", 40, 0.3)
    assert status["history"][0]["verdict"] == "rolledBack"
    assert world.condition("RolledBack")["reason"] == "PostPromotionBreach"
    assert "RolledBack" in [e["reason"] for e in world.events()]
    assert _rollbacks("watch") == before + 1

    # the next passes keep version 1 (version 2 is withdrawn) and count nothing more
    for _ in range(3):
        world.reconcile()
    assert world.status()["production"]["version"] == "1"
    assert world.condition("CandidateReady")["reason"] == "CandidateWithdrawn"
    assert _rollbacks("watch") == before + 1

    # the LLM re-created over the same registry (its status lost): version 1 is trusted by
    # its signed promotion tag, version 2 stays withdrawn by its rolled-back tag
    world.kube.delete("LLM", world.namespace, NAME)
    world.create_llm()
    assert "production" not in world.status()
    for _ in range(4):
        world.reconcile()
    status = world.status()
    assert status["production"]["version"] == "1"
    assert not status.get("withdrawnVersions")  # known from the registry alone
    assert world.condition("CandidateReady")["reason"] == "CandidateWithdrawn"
    assert world.registry.aliases[(NAME, world.spec.rollout.production_alias)] == "1"
    uid = world.llm()["metadata"]["uid"]
    mine = [
        job["metadata"]["name"]
        for job in world.children("Job", "loadtest")
        if any(ref.get("uid") == uid for ref in job["metadata"].get("ownerReferences") or [])
    ]
    assert mine == []  # not even tested again
