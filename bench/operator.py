"""Benchmark of the operator against the thinnest possible kopf operator, in one run.

1. Latency: time from creating an LLM (as `kubectl apply` does, one POST) to its training
   Job existing, p50/p95 over N LLMs created one after another.
2. Scale: with M LLMs that have no training, the time for the operator to reconcile all of
   them once (reconciles/s, from the first create to the last status write) and the
   operator's RSS afterwards.

The peer is `bench/peer_operator.py`: a kopf operator that, on create, posts a Job and
patches a status field, with no reading, planning or registry. The ratio ours/peer says what
kubellm's level-triggered reconcile (observe children + registry, plan, execute) costs on
top of kopf itself. The cluster is localkube's API server alone (no kubelet: Jobs are only
stored), and the registry is MLflow on sqlite.

    .venv/bin/python bench/operator.py [--latency-llms 50] [--scale-llms 1000]

Targets: p50 apply->Job <= 0.5 s; operator RSS <= 300 MB with 1,000 LLMs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
TARGET_P50_S = 0.5
TARGET_RSS_MB = 300.0


def _llm(name: str, training: bool) -> dict[str, Any]:
    example = "tiny-pretrain.yaml" if training else "registry-rollout.yaml"
    obj = yaml.safe_load((REPO / "examples" / example).read_text())
    obj["metadata"] = {"name": name, "namespace": "default"}
    if training:
        obj["spec"]["training"]["dataset"]["uri"] = "/data/corpus.txt"
    return dict(obj)


class Api:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def create_llm(self, obj: dict[str, Any]) -> None:
        r = self.http.post("/apis/kubellm.dev/v1alpha1/namespaces/default/llms", json=obj)
        r.raise_for_status()

    def job_exists(self, prefix: str) -> bool:
        r = self.http.get("/apis/batch/v1/namespaces/default/jobs")
        return any(j["metadata"]["name"].startswith(prefix) for j in r.json()["items"])

    def reconciled(self) -> int:
        r = self.http.get("/apis/kubellm.dev/v1alpha1/namespaces/default/llms")
        return sum(1 for o in r.json()["items"] if (o.get("status") or {}).get("phase"))

    def delete_all(self) -> None:
        for path in (
            "/apis/kubellm.dev/v1alpha1/namespaces/default/llms",
            "/apis/batch/v1/namespaces/default/jobs",
        ):
            for o in self.http.get(path).json()["items"]:
                self.http.delete(f"{path}/{o['metadata']['name']}")


def _start_operator(
    kind: str, kubeconfig: Path, tracking: str, log: Path
) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        KUBECONFIG=str(kubeconfig),
        KUBELLM_POLL_INTERVAL="600s",
        MLFLOW_DISABLE_TELEMETRY="true",
    )
    if kind == "kubellm":
        cmd = [
            sys.executable,
            "-m",
            "kubellm",
            "--log-level",
            "WARNING",
            "operator",
            "--tracking-uri",
            tracking,
            "--webhook-port",
            "0",
            "--liveness-port",
            "0",
        ]
    else:
        cmd = [
            sys.executable,
            "-m",
            "kopf",
            "run",
            "--standalone",
            "-A",
            "--quiet",
            str(REPO / "bench" / "peer_operator.py"),
        ]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    time.sleep(6 if kind == "kubellm" else 3)  # imports + initial scan
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def _latency(api: Api, n: int, tag: str) -> list[float]:
    samples = []
    for i in range(n):
        name = f"lat-{tag}-{i}"
        started = time.perf_counter()
        api.create_llm(_llm(name, training=True))
        while not api.job_exists(f"{name}-"):
            if time.perf_counter() - started > 30:
                raise TimeoutError(f"no Job for {name}")
            time.sleep(0.005)
        samples.append(time.perf_counter() - started)
    return samples


def _scale(api: Api, proc: subprocess.Popen[bytes], n: int, tag: str) -> tuple[float, float]:
    started = time.perf_counter()
    for i in range(n):
        api.create_llm(_llm(f"scale-{tag}-{i}", training=False))
    while api.reconciled() < n:
        if time.perf_counter() - started > 900:
            raise TimeoutError("not all LLMs reconciled")
        time.sleep(0.5)
    elapsed = time.perf_counter() - started
    rss = psutil.Process(proc.pid).memory_info().rss / 2**20
    return n / elapsed, rss


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-llms", type=int, default=50)
    parser.add_argument("--scale-llms", type=int, default=1000)
    args = parser.parse_args()
    from localkube.apiserver.threaded import ThreadedApiServer

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        tracking = f"sqlite:///{tmpdir / 'mlflow.db'}"
        server = ThreadedApiServer().start()
        try:
            kubeconfig = tmpdir / "kubeconfig"
            kubeconfig.write_text(server.server.kubeconfig())
            api = Api(server.server.url)
            crd = yaml.safe_load((REPO / "charts/kubellm/crds/llms.kubellm.dev.yaml").read_text())
            api.http.post(
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd
            ).raise_for_status()
            time.sleep(0.5)
            for kind in ("peer", "kubellm"):
                proc = _start_operator(kind, kubeconfig, tracking, tmpdir / f"{kind}.log")
                try:
                    lat = _latency(api, args.latency_llms, kind)
                    rate, rss = _scale(api, proc, args.scale_llms, kind)
                finally:
                    _stop(proc)
                api.delete_all()
                results[kind] = {
                    "p50_s": statistics.median(lat),
                    "p95_s": _pct(lat, 0.95),
                    "reconciles_per_s": rate,
                    "rss_mb": rss,
                }
                print(
                    f"{kind:8s} apply->Job p50 {results[kind]['p50_s'] * 1000:7.1f} ms  "
                    f"p95 {results[kind]['p95_s'] * 1000:7.1f} ms  |  "
                    f"{args.scale_llms} LLMs: {rate:6.1f} reconciles/s, RSS {rss:6.1f} MB",
                    flush=True,
                )
        finally:
            server.stop()
    ours, peer = results["kubellm"], results["peer"]
    print(json.dumps(results, indent=2))
    print(
        f"ratio kubellm/peer: p50 latency x{ours['p50_s'] / peer['p50_s']:.2f}, "
        f"reconcile rate x{ours['reconciles_per_s'] / peer['reconciles_per_s']:.2f}, "
        f"RSS x{ours['rss_mb'] / peer['rss_mb']:.2f}"
    )
    ok_lat = ours["p50_s"] <= TARGET_P50_S
    ok_rss = ours["rss_mb"] <= TARGET_RSS_MB
    print(
        f"targets: p50 <= {TARGET_P50_S * 1000:.0f} ms: {'met' if ok_lat else 'MISSED'}; "
        f"RSS <= {TARGET_RSS_MB:.0f} MB: {'met' if ok_rss else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
