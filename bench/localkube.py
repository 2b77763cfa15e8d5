"""Benchmark of the localkube API server: write throughput, watch fan-out latency, memory.

The server runs in its own process (as `kubellm localkube up` runs it), the client here
drives it over HTTP with aiohttp on one connection, as a single operator would.

    .venv/bin/python bench/localkube.py [--objects 5000] [--writes 2000]

Targets: >= 500 writes/s, p99 watch latency <= 50 ms (10 watchers), <= 300 MB RSS with
5,000 objects.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import time
from typing import Any

import aiohttp
import psutil

TARGET_WRITES = 500.0
TARGET_P99_MS = 50.0
TARGET_RSS_MB = 300.0


def _serve(conn: Any) -> None:
    from localkube.apiserver import ApiServer

    async def main() -> None:
        server = ApiServer()
        await server.start()
        conn.send(server.url)
        await asyncio.Event().wait()

    asyncio.run(main())


def _cm(name: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "bench", "n": str(i % 10)}},
        "data": {"index": str(i), "payload": "x" * 200},
    }


async def throughput(url: str, n: int) -> tuple[float, float]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as s:
        base = f"{url}/api/v1/namespaces/default/configmaps"
        start = time.perf_counter()
        for i in range(n):
            async with s.post(base, json=_cm(f"tp-{i}", i)) as r:
                assert r.status == 201, await r.text()
                await r.read()
        writes = n / (time.perf_counter() - start)
        start = time.perf_counter()
        for i in range(n):
            async with s.post(base, json=_cm(f"tq-{i}", i)) as r:
                await r.read()
            async with s.get(f"{base}/tq-{i}") as r:
                assert r.status == 200
                await r.read()
        pairs = n / (time.perf_counter() - start)
    return writes, pairs


async def fanout(url: str, watchers: int, events: int) -> list[float]:
    base = f"{url}/api/v1/namespaces/default/configmaps"
    latencies: list[float] = []
    async with aiohttp.ClientSession() as s:
        async with s.post(base, json=_cm("fan", 0)) as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        ready = asyncio.Event()
        started = 0

        async def watch() -> None:
            nonlocal started
            params = {"watch": "true", "resourceVersion": rv, "fieldSelector": "metadata.name=fan"}
            async with s.get(base, params=params, timeout=aiohttp.ClientTimeout(total=120)) as r:
                started += 1
                if started == watchers:
                    ready.set()
                seen = 0
                async for line in r.content:
                    now = time.time()
                    ev = json.loads(line)
                    sent = float(ev["object"]["metadata"]["annotations"]["sent"])
                    latencies.append((now - sent) * 1000)
                    seen += 1
                    if seen == events:
                        return

        tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
        await asyncio.wait_for(ready.wait(), 10)
        await asyncio.sleep(0.2)
        headers = {"Content-Type": "application/merge-patch+json"}
        for i in range(events):
            body = {"metadata": {"annotations": {"sent": repr(time.time())}}, "data": {"i": str(i)}}
            async with s.patch(f"{base}/fan", data=json.dumps(body), headers=headers) as r:
                await r.read()
            await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return latencies


async def fill(url: str, total: int) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{url}/api/v1/configmaps") as r:
            have = len((await r.json())["items"])
        base = f"{url}/api/v1/namespaces/default/configmaps"
        for i in range(have, total):
            async with s.post(base, json=_cm(f"mem-{i}", i)) as r:
                await r.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--watchers", type=int, default=10)
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child,), daemon=True)
    proc.start()
    try:
        url = parent.recv()
        writes, pairs = asyncio.run(throughput(url, args.writes))
        lat = sorted(asyncio.run(fanout(url, args.watchers, args.events)))
        p50 = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        asyncio.run(fill(url, args.objects))
        rss = psutil.Process(proc.pid).memory_info().rss / 2**20
    finally:
        proc.terminate()
        proc.join(5)
    ok = writes >= TARGET_WRITES and p99 <= TARGET_P99_MS and rss <= TARGET_RSS_MB
    print(f"create throughput:      {writes:8.0f} objects/s   (target >= {TARGET_WRITES:.0f})")
    print(f"create+get throughput:  {pairs:8.0f} pairs/s")
    print(
        f"watch fan-out latency:  p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(lat)} deliveries "
        f"({args.watchers} watchers)   (target p99 <= {TARGET_P99_MS:.0f} ms)"
    )
    print(
        f"server RSS at {args.objects} objects: {rss:6.0f} MB   (target <= {TARGET_RSS_MB:.0f} MB)"
    )
    print("all targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
