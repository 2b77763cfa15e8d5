"""Capacity of the load-test gate on this machine, and its overhead.

Three figures, each measured in this one run against a trivial HTTP endpoint on loopback
(a raw asyncio server in its own process that answers every request with a fixed
OpenAI-style completion, so the server is never the bottleneck of interest):

1. requests/s one Locust process drives with ``FastHttpUser`` (GET, no checks): Locust's
   ceiling here, the number that says when ``--workers`` is needed;
2. requests/s ``kubellm loadtest`` drives with its own locustfile (POST completions, JSON
   parsed, tokens counted), single process and with ``--workers 2``;
3. the gate's overhead: wall time of ``kubellm loadtest`` minus ``--duration`` (target <= 5 s).

    .venv/bin/python bench/loadtest_capacity.py [--duration 10] [--users 32]

On a shared two-core machine the load generator and the server compete for the same
cores, so the ratios matter more than the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BODY = json.dumps(
    {
        "id": "bench",
        "object": "text_completion",
        "model": "bench",
        "choices": [{"index": 0, "text": " ok", "finish_reason": "length"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 8, "total_tokens": 12},
    }
).encode()
MODELS = json.dumps({"object": "list", "data": [{"id": "bench"}]}).encode()


def _response(body: bytes) -> bytes:
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


class _TrivialHTTP(asyncio.Protocol):
    """Keep-alive HTTP/1.1: read a request (headers + Content-Length body), answer fixed JSON."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            length = 0
            marker = head.find(b"content-length:")
            if marker >= 0:
                length = int(head[marker + 15 :].split(b"\r\n", 1)[0])
            if len(self.buffer) < end + 4 + length:
                return
            first_line = head.split(b"\r\n", 1)[0]
            self.buffer = self.buffer[end + 4 + length :]
            body = MODELS if b"/v1/models" in first_line else BODY
            self.transport.write(_response(body))  # type: ignore[attr-defined]


def serve(port: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_TrivialHTTP, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("trivial server did not start")


RAW_LOCUSTFILE = """
from locust import FastHttpUser, constant, task

class Raw(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self):
        self.client.get("/")
"""


def raw_locust_rps(url: str, users: int, duration: int, work: Path) -> float:
    """Requests/s one plain Locust process sustains (Locust's own Aggregated row)."""
    lf = work / "raw_locustfile.py"
    lf.write_text(RAW_LOCUSTFILE)
    subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(lf), "--headless", "-H", url,
         "-u", str(users), "-r", str(users * 10), "-t", f"{duration}s", "--only-summary",
         "--csv", str(work / "raw"), "--stop-timeout", "0"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work,
    )  # fmt: skip
    with (work / "raw_stats.csv").open() as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    return float(row["Requests/s"])


def gate_run(url: str, users: int, duration: int, workers: int, work: Path) -> tuple[float, float]:
    """(requests/s measured by the gate, wall seconds of the whole command)."""
    out = work / f"gate-w{workers}"
    env = {**os.environ, "KUBELLM_TERMINATION_LOG": str(work / "termination-log")}
    start = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "kubellm", "loadtest", "--target", url, "--users", str(users),
         "--spawn-rate", str(users * 10), "--duration", f"{duration}s", "--workers",
         str(workers), "--stream-ratio", "0", "--slo", "maxErrorRate=0.01", "--out", str(out)],
        check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO,
    )  # fmt: skip
    wall = time.monotonic() - start
    doc = json.loads((out / "verdict.json").read_text())
    if doc["verdict"] != "pass":
        raise RuntimeError(f"gate run did not pass: {doc['reasons']}")
    return float(doc["figures"]["requestsPerSecond"]), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    port = _free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_listening(port)
        with tempfile.TemporaryDirectory(prefix="kubellm-lt-bench-") as tmp:
            work = Path(tmp)
            raw = raw_locust_rps(url, args.users, args.duration, work)
            gate1, wall1 = gate_run(url, args.users, args.duration, 1, work)
            gate2, wall2 = gate_run(url, args.users, args.duration, 2, work)
    finally:
        server.terminate()
        server.wait(timeout=10)

    print(f"cpu cores: {os.cpu_count()}, users: {args.users}, duration: {args.duration}s")
    print(f"locust FastHttpUser, 1 process, GET /:        {raw:8.0f} requests/s")
    print(f"kubellm loadtest, 1 process (completions):    {gate1:8.0f} requests/s")
    print(f"kubellm loadtest, --workers 2 (completions):  {gate2:8.0f} requests/s")
    print(f"gate overhead, 1 process (wall - duration):   {wall1 - args.duration:8.2f} s")
    print(f"gate overhead, --workers 2 (wall - duration): {wall2 - args.duration:8.2f} s")
    print(f"gate / raw locust requests/s ratio:           {gate1 / raw:8.2f}")


if __name__ == "__main__":
    main()
