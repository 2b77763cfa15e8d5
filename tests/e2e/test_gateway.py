"""Scale to zero through the gateway, end to end: a real `kubellm gateway` process in front
of the releases, the real operator reading its demand, the tiny model trained and promoted.

An LLM with `replicas.min: 0` serves through the gateway, scales to zero after idling for
`scaleToZeroAfter`, and 16 concurrent requests sent while it is at zero are all answered;
the cold start the gateway measured shows in the LLM's status and in `kubectl get llm`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from .conftest import System, e2e_manifest, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NAME = "gw-bot"
IDLE = "15s"


@dataclass
class Gateway:
    url: str
    admin_url: str
    proc: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def gateway(system: System) -> Iterator[Gateway]:
    """`kubellm gateway` as a process, and the operator restarted to read its demand."""
    port, admin = free_port(), free_port()
    log = open(system.workdir / "gateway.log", "ab")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubellm",
            "gateway",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--admin-port",
            str(admin),
            "--hold-timeout",
            "240s",
        ],
        env=system.cluster.env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    gw = Gateway(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}", proc)
    try:
        system.wait_for("the gateway to be ready", lambda: _ready(gw), 60, 0.5)
        system.operator.stop()
        system.operator.extra_env["KUBELLM_GATEWAY_DEMAND_URL"] = gw.admin_url + "/demand"
        system.operator.start()
        yield gw
    finally:
        system.operator.extra_env.pop("KUBELLM_GATEWAY_DEMAND_URL", None)
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _ready(gw: Gateway) -> bool:
    if gw.proc.poll() is not None:
        raise RuntimeError("the gateway exited; see gateway.log")
    try:
        return httpx.get(gw.admin_url + "/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _complete(gw: Gateway, i: int = 0) -> tuple[int, Any]:
    body = {"model": NAME, "prompt": f"Question {i}: how do I deploy?", "max_tokens": 8}
    resp = httpx.post(gw.url + "/v1/completions", json=body, timeout=300)
    return resp.status_code, resp.json()


def _serving(system: System) -> dict[str, Any]:
    return dict(system.status(NAME).get("serving") or {})


def _desired_replicas(system: System) -> int:
    out = system.kubectl("get", "deployment", f"{NAME}-v1", "-o", "jsonpath={.spec.replicas}")
    return int(out or 0)


def _has_hpa(system: System) -> bool:
    out = system.kubectl("get", "hpa", "-o", "jsonpath={.items[*].metadata.name}")
    return NAME in out.split()


def _table(text: str) -> dict[str, str]:
    """kubectl's table, read by the header's column offsets (empty cells stay empty)."""
    header, row = text.splitlines()[:2]
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    cells = {}
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(row)
        cells[header[start:end].strip()] = row[start:end].strip()
    return cells


def _ready_condition(system: System) -> dict[str, Any]:
    return next(c for c in system.status(NAME)["conditions"] if c["type"] == "Ready")


def test_llm_scales_to_zero_and_back_through_the_gateway(system: System, gateway: Gateway) -> None:
    manifest = e2e_manifest(NAME)
    manifest["spec"]["serving"]["replicas"] = {"min": 0, "max": 2}
    manifest["spec"]["serving"]["scaleToZeroAfter"] = IDLE
    system.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
    system.wait_for(
        "version 1 in production",
        lambda: (
            (system.status(NAME).get("production") or {}).get("version") == "1"
            and system.status(NAME).get("phase") == "Ready"
        ),
        300,
    )
    # the gateway lists it and routes to the production Service
    models = httpx.get(gateway.url + "/v1/models", timeout=10).json()["data"]
    assert NAME in [m["id"] for m in models]
    assert _serving(system)["routes"] == [{"version": "1", "service": NAME, "weight": 100}]

    status, body = _complete(gateway)
    assert status == 200 and body["choices"], body
    answered = time.monotonic()

    # idle for scaleToZeroAfter: the operator scales the release to zero and drops the HPA
    system.wait_for(
        "the release at zero",
        lambda: (
            _serving(system).get("scaledToZero")
            and _serving(system).get("replicas") == 0
            and _desired_replicas(system) == 0
        ),
        180,
    )
    assert time.monotonic() - answered >= 15 - 1  # not before the idle time
    assert not _has_hpa(system)
    ready = _ready_condition(system)
    assert (ready["status"], ready["reason"]) == ("True", "ScaledToZero")
    before = _serving(system).get("lastColdStartAt")

    # 16 concurrent requests at zero: held by the gateway, all answered
    sent = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: _complete(gateway, i), range(16)))
    elapsed = time.monotonic() - sent
    assert [s for s, _ in results] == [200] * 16, results
    assert all(b["choices"] for _, b in results)

    # the cold start, as the gateway measured it, is in the status and kubectl get llm
    system.wait_for(
        "the cold start in status",
        lambda: (
            _serving(system).get("lastColdStartAt") not in (None, before)
            and _serving(system).get("replicas", 0) >= 1
        ),
        60,
    )
    serving = _serving(system)
    cold = serving["lastColdStartSeconds"]
    assert 0 < cold <= elapsed, (cold, elapsed)
    assert serving["scaledToZero"] is False
    assert _has_hpa(system)
    columns = _table(system.kubectl("get", "llm", NAME, "-o", "wide"))
    assert int(columns["REPLICAS"]) >= 1
    assert float(columns["COLD-START-S"]) == pytest.approx(cold, abs=0.01)
    metrics = httpx.get(gateway.admin_url + "/metrics", timeout=10).text
    assert f'kubellm_gateway_cold_starts_total{{llm="default/{NAME}"}}' in metrics
    print(
        f"\ncold start through the gateway: {cold:.2f} s (16 requests answered in {elapsed:.2f} s)"
    )
