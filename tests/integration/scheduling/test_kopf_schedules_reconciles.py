"""kopf decides when an LLM is reconciled: the real handlers, the real kopf, a real API server.

kopf runs in-process against an in-process localkube API server that serves the LLM CRD;
the reconciler is a recording stand-in (what a reconcile does is tested elsewhere), so
what these pin is only the scheduling: one reconcile daemon per LLM, never two reconciles
of one LLM at once, requeues as waits (no ERROR line), nudges from changes, webhooks and
the gateways' demand served at once and coalesced, errors logged by kopf and retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import kopf
import pytest
import yaml
from aiohttp import web

from kubellm.api.crd import build_crd
from kubellm.gateway.demand import DemandReport, LLMDemand, to_json
from kubellm.operator.config import OperatorConfig
from kubellm.operator.handlers import build_registry
from kubellm.operator.reconciling import Outcome, Reconciler
from kubellm.operator.webhooks import sign
from localkube.apiserver.threaded import ThreadedApiServer

from ...unit.operator.memory_kube import MemoryKube

REPO = Path(__file__).resolve().parents[3]
SECRET = "s3cret"
LLMS = "/apis/kubellm.dev/v1alpha1/namespaces/default/llms"


@dataclass
class Call:
    name: str
    trigger: str
    started: float
    ended: float = 0.0


@dataclass
class Script:
    """What the stand-in reconciler does next for one LLM: outcomes, delays, failures."""

    outcomes: list[Outcome | Exception] = field(default_factory=list)
    seconds: float = 0.0


class RecordingReconciler(Reconciler):
    def __init__(self, config: OperatorConfig) -> None:
        super().__init__(MemoryKube(), config)
        self.calls: list[Call] = []
        self.scripts: dict[str, Script] = {}
        self.running: dict[str, int] = {}
        self.overlaps = 0
        self._lock = threading.Lock()

    def reconcile(self, namespace: str, name: str, trigger: str = "change") -> Outcome:
        call = Call(name, trigger, time.monotonic())
        with self._lock:
            self.calls.append(call)
            self.running[name] = self.running.get(name, 0) + 1
            self.overlaps += self.running[name] > 1
            script = self.scripts.setdefault(name, Script())
            step = script.outcomes.pop(0) if script.outcomes else Outcome()
        try:
            time.sleep(script.seconds)
            if isinstance(step, Exception):
                raise step
            return step
        finally:
            with self._lock:
                self.running[name] -= 1
                call.ended = time.monotonic()

    def triggers(self, name: str) -> list[str]:
        with self._lock:
            return [c.trigger for c in self.calls if c.name == name]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _manifest(name: str, model: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((REPO / "examples/tiny-pretrain.yaml").read_text())
    obj["metadata"] = {"name": name, "namespace": "default"}
    obj["spec"]["model"]["registeredModel"] = model
    return obj


async def _until(predicate: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedApiServer]:
    with ThreadedApiServer() as server:
        crds = f"{server.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        httpx.post(crds, json=build_crd()).raise_for_status()
        yield server


@pytest.fixture
def kubeconfig(
    apiserver: ThreadedApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "t", "cluster": {"server": apiserver.url}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "c", "context": {"cluster": "t", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(path))


@dataclass
class Running:
    reconciler: RecordingReconciler
    config: OperatorConfig
    api: httpx.AsyncClient
    gateway: FakeGateway

    async def create(self, name: str, model: str = "bot") -> None:
        (await self.api.post(LLMS, json=_manifest(name, model))).raise_for_status()

    async def delete(self, name: str) -> None:
        (await self.api.delete(f"{LLMS}/{name}")).raise_for_status()

    async def exists(self, name: str) -> bool:
        return (await self.api.get(f"{LLMS}/{name}")).status_code == 200

    async def edit(self, name: str, users: int) -> None:
        patch = {"spec": {"rollout": {"loadTest": {"users": users}}}}
        resp = await self.api.patch(
            f"{LLMS}/{name}",
            content=json.dumps(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        resp.raise_for_status()

    async def webhook(self, model: str, delivery: str) -> httpx.Response:
        data = {"name": model, "version": "2"}
        body = json.dumps({"entity": "model_version", "action": "created", "data": data})
        ts = str(int(time.time()))
        headers = {
            "X-MLflow-Delivery-Id": delivery,
            "X-MLflow-Timestamp": ts,
            "X-MLflow-Signature": sign(SECRET, delivery, ts, body),
            "Content-Type": "application/json",
        }
        url = f"http://127.0.0.1:{self.config.webhook_port}/webhooks/mlflow"
        async with httpx.AsyncClient() as http:
            return await http.post(url, content=body, headers=headers)


class FakeGateway:
    """A gateway's admin endpoint: ``GET /demand`` as a long poll (`kubellm.gateway.demand`)."""

    def __init__(self) -> None:
        self.report = DemandReport("gw", 1, 100.0, {})
        self._changed = asyncio.Event()
        self.port = _free_port()

    def hold(self, key: str) -> None:
        llms = {key: LLMDemand(held=1, holding_seconds=0.1)}
        self.report = DemandReport("gw", self.report.seq + 1, 101.0, llms)
        self._changed.set()
        self._changed = asyncio.Event()

    async def demand(self, request: web.Request) -> web.Response:
        if request.query.get("instance") == "gw" and request.query.get("after") == str(
            self.report.seq
        ):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), float(request.query["wait"]))
        return web.json_response(to_json(self.report))


@pytest.fixture
async def operator(
    apiserver: ThreadedApiServer, kubeconfig: None, request: pytest.FixtureRequest
) -> AsyncIterator[Running]:
    """kopf with the real handlers; ``request.param``: the polling interval (default 30 s)."""
    gateway = FakeGateway()
    app = web.Application()
    app.router.add_get("/demand", gateway.demand)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", gateway.port).start()
    config = OperatorConfig(
        webhook_host="127.0.0.1",
        webhook_port=_free_port(),
        webhook_secret=SECRET,
        poll_interval=getattr(request, "param", 30.0),
        gateway_demand_url=f"http://127.0.0.1:{gateway.port}/demand",
    )
    reconciler = RecordingReconciler(config)
    # kopf on a loop of its own (as `kopf.run` has): at its end it cancels every task left
    stop, ready = threading.Event(), threading.Event()
    kopf_thread = threading.Thread(
        target=asyncio.run,
        args=(
            kopf.operator(
                registry=build_registry(reconciler, config),
                standalone=True,
                clusterwide=True,
                stop_flag=stop,
                ready_flag=ready,
            ),
        ),
    )
    kopf_thread.start()
    assert await asyncio.to_thread(ready.wait, 30)
    async with httpx.AsyncClient(base_url=apiserver.url) as api:
        running = Running(reconciler, config, api, gateway)
        try:
            yield running
        finally:
            names = list(reconciler.scripts)
            for name in names:
                if await running.exists(name):
                    await running.delete(name)
            for name in names:  # kopf stops the daemon, then releases its finalizer
                deadline = time.monotonic() + 15
                while await running.exists(name) and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
            stop.set()
            await asyncio.to_thread(kopf_thread.join, 30)
            assert not kopf_thread.is_alive()
            await runner.cleanup()


async def test_requeues_are_waits_not_errors_and_changes_are_served_at_once(
    operator: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    rec = operator.reconciler
    rec.scripts["a"] = Script([Outcome(requeue_after=0.3), Outcome(requeue_after=0.3)])
    await operator.create("a")
    await _until(lambda: len(rec.triggers("a")) >= 3, 10, "the start and two requeues")
    assert rec.triggers("a") == ["change", "requeue", "requeue"]
    calls = [c for c in rec.calls if c.name == "a"]
    # requeue_after, not the 30 s poll (the upper bound leaves room for a busy machine)
    assert 0.25 <= calls[1].started - calls[0].ended < 5.0
    await asyncio.sleep(0.6)
    assert rec.triggers("a") == ["change", "requeue", "requeue"]  # steady: waits for news
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text

    started = time.monotonic()
    await operator.edit("a", users=3)
    await _until(lambda: len(rec.triggers("a")) >= 4, 10, "the reconcile of a change")
    assert rec.triggers("a")[3] == "change"
    assert time.monotonic() - started < 10.0  # a nudge, well under the 30 s poll


async def test_webhook_nudges_the_llms_of_its_model_once_each_and_never_in_parallel(
    operator: Running,
) -> None:
    rec = operator.reconciler
    for name, model in (("b1", "shared"), ("b2", "shared"), ("c", "other")):
        rec.scripts[name] = Script()
        await operator.create(name, model)
    await _until(
        lambda: all(rec.triggers(n) == ["change"] for n in ("b1", "b2", "c")), 10, "starts"
    )

    # a slow reconcile in flight: the nudges that arrive meanwhile make one more, after it
    # 3 s: long enough for the edit and the second delivery to arrive while it runs, even
    # on a busy machine (0.6 s was not, under a CPU hog: a fourth reconcile followed)
    rec.scripts["b1"].seconds = 3.0
    rec.scripts["b2"].seconds = 3.0
    resp = await operator.webhook("shared", "d-1")
    assert resp.status_code == 200
    assert resp.json() == {"reconciling": ["default/b1", "default/b2"]}
    await asyncio.sleep(0.1)
    await operator.edit("b1", users=5)  # a change while b1's webhook reconcile runs
    assert (await operator.webhook("shared", "d-2")).status_code == 200
    await _until(lambda: len(rec.triggers("b1")) >= 3, 15, "b1's follow-up")
    await asyncio.sleep(3.5)
    # two nudges while it ran (a change, a delivery): one more reconcile, after it
    assert rec.triggers("b1")[:2] == ["change", "webhook"] and len(rec.triggers("b1")) == 3
    assert rec.triggers("b2") == ["change", "webhook", "webhook"]
    assert rec.triggers("c") == ["change"]  # another model: left alone
    assert rec.overlaps == 0


async def test_demand_news_from_a_gateway_reconciles_its_llm_at_once(operator: Running) -> None:
    rec = operator.reconciler
    for name in ("z", "y"):
        rec.scripts[name] = Script()
        await operator.create(name)
    await _until(lambda: rec.triggers("z") == rec.triggers("y") == ["change"], 10, "the starts")
    await _until(lambda: rec.demand is not None, 5, "the demand follower")

    started = time.monotonic()
    operator.gateway.hold("default/z")  # a request held at zero: the long poll answers
    await _until(lambda: len(rec.triggers("z")) >= 2, 10, "the reconcile of the demand")
    assert rec.triggers("z") == ["change", "demand"]
    assert time.monotonic() - started < 10.0  # pushed, well under the 30 s poll
    assert rec.demand is not None and rec.demand("default", "z") == LLMDemand(
        held=1, holding_seconds=0.1
    )
    assert rec.triggers("y") == ["change"]


@pytest.mark.parametrize("operator", [1.0], indirect=True)
async def test_a_failing_reconcile_is_logged_by_kopf_with_its_traceback_and_retried(
    operator: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    rec = operator.reconciler
    rec.scripts["e"] = Script([RuntimeError("the API server is down")])
    await operator.create("e")
    await _until(lambda: len(rec.triggers("e")) >= 2, 10, "the retry")
    assert rec.triggers("e")[:2] == ["change", "retry"]  # after the backoff (1 s here)
    failed = [r for r in caplog.records if "the API server is down" in r.getMessage()]
    failed += [r for r in caplog.records if r.exc_info and "down" in str(r.exc_info[1])]
    assert any(r.levelno == logging.ERROR and r.exc_info for r in failed), caplog.text


async def test_a_deleted_llm_is_released_once_its_reconcile_in_flight_ends(
    operator: Running,
) -> None:
    rec = operator.reconciler
    rec.scripts["g"] = Script(seconds=0.0)
    await operator.create("g")
    await _until(lambda: rec.triggers("g") == ["change"], 10, "the start")
    rec.scripts["g"].seconds = 1.0
    await operator.edit("g", users=7)
    await _until(lambda: len(rec.triggers("g")) == 2, 5, "the slow reconcile")
    await operator.delete("g")
    deadline = time.monotonic() + 15
    while await operator.exists("g") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    gone_at = time.monotonic()
    assert not await operator.exists("g")
    call = [c for c in rec.calls if c.name == "g"][-1]
    assert call.ended and call.ended <= gone_at  # the finalizer went after the reconcile
    assert rec.triggers("g") == ["change", "change"] and rec.overlaps == 0


async def test_an_operator_that_cannot_bind_its_webhook_port_exits_with_the_reason(
    kubeconfig: None, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        config = OperatorConfig(webhook_host="127.0.0.1", webhook_port=port)
        registry = build_registry(RecordingReconciler(config), config)
        started = time.monotonic()
        with pytest.raises(Exception, match="handlers failed") as failed:
            await asyncio.to_thread(
                asyncio.run, kopf.operator(registry=registry, standalone=True, clusterwide=True)
            )
    assert time.monotonic() - started < 10  # no retry loop
    assert isinstance(failed.value.__cause__, kopf.PermanentError)
    assert f"cannot serve webhooks and metrics on 127.0.0.1:{port}" in caplog.text
    assert caplog.text.count("cannot serve webhooks") == 1  # said once
