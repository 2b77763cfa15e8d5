"""The Locust users of the load-test gate, and the hooks that turn Locust's stats into figures.

Loaded by Locust in its own process (``python -m locust -f <this file>``), never imported by
the gate itself: importing Locust monkey-patches the interpreter with gevent.

Each user sends completions or chat completions back to back (a closed loop, as many
requests in flight as users), streamed or not, in the mix the plan asks for. Streamed
requests are recorded three ways, each as its own Locust entry: end-to-end latency (``POST``
entries, until the last byte), time to first token (``TTFT``) and every gap between tokens
(``ITL``). The verdict's figures are computed from the runner's in-memory stats when the
run quits: Locust's ``--json`` output carries no percentiles and its final CSV misses the
last second, so neither is used.

The measurement window is timed here, on the master (or the only process): the warm-up
runs first, then every stats table is reset (on workers too, by message) and the window
runs for the planned duration, after which the runner quits. A run that quits before that
(a signal, a crash of a worker, Locust's ``--run-time`` backstop) writes its figures with
``completed: false``, which the verdict treats as a fail.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

import gevent
import locust.runners
from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import RequestStats, StatsEntry

from kubellm.loadtests.figures import Figures, Percentiles, write_figures
from kubellm.loadtests.openai_wire import (
    CHAT_PATH,
    COMPLETIONS_PATH,
    StreamTally,
    chat_body,
    completion_body,
    empty_generation,
    finish_reason,
    model_stopped,
    response_text,
    response_tokens,
)
from kubellm.loadtests.plan import API_KEY_ENV, PROGRESS_PREFIX, LocustPlan
from kubellm.loadtests.prompts import load_prompts

PLAN = LocustPlan.from_env()
PROMPTS = load_prompts(Path(PLAN.prompts_file) if PLAN.prompts_file else None)
API_KEY = os.environ.get(API_KEY_ENV) or None

E2E = "POST"  # Locust entry type of whole requests
TTFT = "TTFT"  # time to first token of streamed requests
ITL = "ITL"  # inter-token latency of streamed requests
RESET_MESSAGE = "kubellm_reset"

# Workers report to the master every 3 s by default; every second keeps the master's
# progress lines current and its final figures at most a second behind before the
# workers' last report on quit.
locust.runners.WORKER_REPORT_INTERVAL = 1.0


class _Tokens:
    """Generated tokens counted in this process since the last report/reset."""

    counted = 0
    unknown = 0  # successful responses that did not say how many tokens they carried

    @classmethod
    def reset(cls) -> None:
        cls.counted = 0
        cls.unknown = 0


class _Window:
    """The measurement window, kept by the master (or the only process)."""

    env: Environment | None = None
    started_at: float | None = None  # monotonic time of the stats reset after warm-up
    ended_at: float | None = None
    completed = False
    peak_users = 0


def _fire(env: Environment, kind: str, name: str, ms: float) -> None:
    env.events.request.fire(
        request_type=kind,
        name=name,
        response_time=ms,
        response_length=0,
        exception=None,
        context={},
    )


class OpenAIUser(FastHttpUser):
    """Sends completion and chat requests to an OpenAI-compatible server, back to back."""

    wait_time = constant(0)
    network_timeout = PLAN.request_timeout_s
    connection_timeout = PLAN.request_timeout_s

    def on_start(self) -> None:
        self.rng = random.Random()
        self.headers = {"Authorization": f"Bearer {API_KEY}"} if API_KEY else {}

    @task
    def generate(self) -> None:
        prompt = self.rng.choice(PROMPTS)
        chat = self.rng.random() < PLAN.chat_ratio
        stream = self.rng.random() < PLAN.stream_ratio
        path = CHAT_PATH if chat else COMPLETIONS_PATH
        build = chat_body if chat else completion_body
        body = build(prompt, PLAN.model, PLAN.max_tokens, stream)
        if stream:
            self._streamed(path, body)
        else:
            self._plain(path, body)

    def _plain(self, path: str, body: dict[str, Any]) -> None:
        with self.client.post(
            path, name=path, json=body, headers=self.headers, catch_response=True
        ) as resp:
            if resp.status_code != 200:
                resp.failure(_http_failure(resp))
                return
            try:
                data = json.loads(resp.content or b"")
            except ValueError:
                resp.failure("response is not JSON")
                return
            stopped = model_stopped(finish_reason(data), response_tokens(data))
            empty = empty_generation(bool(response_text(data)), PLAN.max_tokens, stopped)
            if empty:
                resp.failure(empty)
                return
            tokens = response_tokens(data)
            if tokens is None:
                _Tokens.unknown += 1
            else:
                _Tokens.counted += tokens
            resp.success()

    def _streamed(self, path: str, body: dict[str, Any]) -> None:
        name = f"{path} (stream)"
        start = time.perf_counter()
        with self.client.post(
            path, name=name, json=body, headers=self.headers, stream=True, catch_response=True
        ) as resp:
            if resp.status_code != 200:
                if resp.status_code:
                    _drain(resp)
                resp.failure(_http_failure(resp))
                return
            tally = StreamTally(start=start)
            raw = resp._response  # geventhttpclient response: readline() yields as data arrives
            try:
                while line := raw.readline(b"\n"):
                    tally.feed(line, time.perf_counter())
            except Exception as exc:  # connection reset or timeout mid-stream
                tally.error = f"stream broken: {type(exc).__name__}"
            resp.request_meta["response_time"] = (time.perf_counter() - start) * 1000.0
            resp.request_meta["response_length"] = tally.bytes_read
            if tally.error:
                resp.failure(tally.error)
                return
            if not tally.done:
                resp.failure("stream ended without data: [DONE]")
                return
            stopped = model_stopped(tally.finish_reason, tally.usage_tokens)
            empty = empty_generation(tally.content_chunks > 0, PLAN.max_tokens, stopped)
            if empty:
                resp.failure(empty)
                return
            resp.success()
        _Tokens.counted += tally.tokens
        if tally.ttft_ms is not None:
            _fire(self.environment, TTFT, path, tally.ttft_ms)
        for gap in tally.inter_token_ms:
            _fire(self.environment, ITL, path, gap)


def _drain(resp: Any) -> None:
    """Read an unwanted streamed body so the keep-alive connection can be reused."""
    try:
        resp._response.read()
    except Exception:  # the connection is gone anyway; the pool will open a new one
        pass


def _http_failure(resp: Any) -> str:
    if resp.status_code == 0:
        exc = resp.request_meta.get("exception") or getattr(resp, "error", None)
        return f"connection failed: {type(exc).__name__}: {exc}" if exc else "connection failed"
    return f"HTTP {resp.status_code}"


# --- figures -------------------------------------------------------------------------------


def _merged(stats: RequestStats, kind: str) -> StatsEntry | None:
    merged = StatsEntry(stats, kind, kind, use_response_times_cache=False)
    for entry in list(stats.entries.values()):
        if entry.method == kind:
            merged.extend(entry)
    return merged if merged.num_requests else None


def _percentiles(entry: StatsEntry | None) -> Percentiles | None:
    if entry is None:
        return None
    pct = entry.get_response_time_percentile
    return Percentiles(
        count=entry.num_requests,
        p50=float(pct(0.5)),
        p90=float(pct(0.9)),
        p95=float(pct(0.95)),
        p99=float(pct(0.99)),
        max=float(entry.max_response_time),
        avg=round(float(entry.avg_response_time), 3),
    )


def _top_errors(stats: RequestStats, limit: int = 5) -> list[dict[str, Any]]:
    errors = [e for e in stats.errors.values() if e.method == E2E]
    errors.sort(key=lambda e: e.occurrences, reverse=True)
    return [{"error": f"{e.name}: {e.error}", "occurrences": e.occurrences} for e in errors[:limit]]


def _figures(env: Environment) -> Figures:
    runner = env.runner
    assert runner is not None
    stats = runner.stats
    e2e = _merged(stats, E2E)
    now = time.monotonic()
    start = _Window.started_at
    end = _Window.ended_at if _Window.ended_at is not None else now
    return Figures(
        requests=e2e.num_requests if e2e else 0,
        failures=e2e.num_failures if e2e else 0,
        duration_s=max(0.0, end - start) if start is not None else 0.0,
        planned_duration_s=PLAN.duration_s,
        completed=_Window.completed,
        latency=_percentiles(e2e),
        ttft=_percentiles(_merged(stats, TTFT)),
        itl=_percentiles(_merged(stats, ITL)),
        tokens=None if _Tokens.unknown else _Tokens.counted,
        users=_Window.peak_users,
        errors=_top_errors(stats),
        generator_saturated=bool(
            runner.cpu_warning_emitted or getattr(runner, "worker_cpu_warning_emitted", False)
        ),
    )


# --- the window, progress and the hand-over of figures -------------------------------------


def _reset(env: Environment) -> None:
    assert env.runner is not None
    env.runner.stats.reset_all()
    _Tokens.reset()
    if isinstance(env.runner, MasterRunner):
        env.runner.send_message(RESET_MESSAGE)


def _run_window(env: Environment) -> None:
    if PLAN.warmup_s > 0:
        gevent.sleep(PLAN.warmup_s)
    _reset(env)
    _Window.started_at = time.monotonic()
    gevent.sleep(PLAN.duration_s)
    _Window.ended_at = time.monotonic()
    _Window.completed = True
    assert env.runner is not None
    _Window.peak_users = max(_Window.peak_users, env.runner.user_count)
    env.runner.quit()


def _report_progress(env: Environment) -> None:
    began = time.monotonic()
    last_requests, last_at = 0, began
    while True:
        gevent.sleep(PLAN.progress_interval_s)
        runner = env.runner
        if runner is None or _Window.ended_at is not None:
            return
        _Window.peak_users = max(_Window.peak_users, runner.user_count)
        e2e = _merged(runner.stats, E2E)
        requests = e2e.num_requests if e2e else 0
        failures = e2e.num_failures if e2e else 0
        now = time.monotonic()
        delta = requests - last_requests if requests >= last_requests else requests
        line = {
            "label": PLAN.label,
            "phase": "measuring" if _Window.started_at is not None else "warm-up",
            "elapsed": round(now - began, 1),
            "users": runner.user_count,
            "requests": requests,
            "failures": failures,
            "rps": round(delta / max(now - last_at, 1e-6), 1),
            "p95": e2e.get_response_time_percentile(0.95) if e2e else None,
        }
        last_requests, last_at = requests, now
        print(PROGRESS_PREFIX + json.dumps(line), flush=True)


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):

        def on_reset(**__: Any) -> None:
            runner.stats.reset_all()
            _Tokens.reset()

        def on_report(client_id: str, data: dict[str, Any]) -> None:
            data["kubellm_tokens"] = _Tokens.counted
            data["kubellm_tokens_unknown"] = _Tokens.unknown
            _Tokens.reset()

        runner.register_message(RESET_MESSAGE, on_reset)
        environment.events.report_to_master.add_listener(on_report)
        return

    _Window.env = environment
    if isinstance(runner, MasterRunner):

        def on_worker_report(client_id: str, data: dict[str, Any]) -> None:
            _Tokens.counted += int(data.get("kubellm_tokens", 0))
            _Tokens.unknown += int(data.get("kubellm_tokens_unknown", 0))

        environment.events.worker_report.add_listener(on_worker_report)

    def on_test_start(**__: Any) -> None:
        gevent.spawn(_run_window, environment)
        gevent.spawn(_report_progress, environment)

    environment.events.test_start.add_listener(on_test_start)


@events.quit.add_listener
def _on_quit(**_: Any) -> None:
    """Write the figures once Locust has stopped (and collected the workers' last reports)."""
    env = _Window.env
    if env is None or env.runner is None:
        return
    _Window.peak_users = max(_Window.peak_users, env.runner.user_count)
    write_figures(Path(PLAN.figures_path), _figures(env))
