"""Runs Locust headless as subprocesses and collects what each run measured.

Locust cannot run inside the gate's process (its import monkey-patches the interpreter
with gevent), so each run is ``python -m locust -f locustfile.py --headless ...``: one
process, or with ``workers > 1`` Locust's own master/worker mode (a ``--master`` that
expects K ``--worker`` processes), which is how one pod drives more load than one Python
process can. With a baseline, a second, identical run against production starts at the
same moment, so that both see the same window of cluster conditions.

Every process lives in its own session and is stopped with its process group, on success,
on timeout, on a dead worker and on SIGTERM/Ctrl-C alike: no Locust outlives the gate.
The runner never judges: it reports figures (or why there are none) per run.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kubellm.loadtests.figures import read_figures
from kubellm.loadtests.plan import API_KEY_ENV, PLAN_ENV, PROGRESS_PREFIX, LocustPlan
from kubellm.loadtests.verdict import RunResult

__all__ = ["LOCUSTFILE", "LocustRun", "RunSpec", "format_progress", "run_all"]

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
# Time allowed for Locust to start (imports, workers connecting) and to shut down, beyond
# warm-up + duration, before a run is declared hung and stopped.
STARTUP_ALLOWANCE_S = 60.0
SHUTDOWN_ALLOWANCE_S = 20.0
# A master whose workers have not all connected by then gives up (exit 1: no figures).
WORKERS_MAX_WAIT_S = 30.0

ProgressCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class RunSpec:
    """One Locust run: a target, a load shape and a folder for its outputs."""

    plan: LocustPlan
    target: str
    out_dir: Path
    users: int
    spawn_rate: float
    workers: int = 1
    api_key: str | None = None

    @property
    def label(self) -> str:
        return self.plan.label


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def format_progress(p: dict[str, Any]) -> str:
    """One human line from a progress record printed by the locustfile."""
    requests, failures = int(p.get("requests", 0)), int(p.get("failures", 0))
    share = f"{failures / requests * 100:.2f}%" if requests else "n/a"
    p95 = p.get("p95")
    return (
        f"[{p.get('label')}] {p.get('elapsed', 0):>6.1f}s {p.get('phase', ''):<9} "
        f"users={p.get('users', 0)} rps={p.get('rps', 0):.1f} "
        f"p95={'-' if p95 is None else f'{p95:g}ms'} errors={failures}/{requests} ({share})"
    )


@dataclass
class LocustRun:
    """The processes of one run (master or single process, plus workers)."""

    spec: RunSpec
    on_progress: ProgressCallback
    main: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    problem: str | None = None
    _reader: threading.Thread | None = None
    _logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def figures_path(self) -> Path:
        return Path(self.spec.plan.figures_path)

    def _env(self, plan_path: Path) -> dict[str, str]:
        env = dict(os.environ)
        env[PLAN_ENV] = str(plan_path)
        env["PYTHONUNBUFFERED"] = "1"
        env.pop(API_KEY_ENV, None)
        if self.spec.api_key:
            env[API_KEY_ENV] = self.spec.api_key
        return env

    def command(self, master_port: int | None) -> list[str]:
        spec, plan = self.spec, self.spec.plan
        backstop = math.ceil(plan.warmup_s + plan.duration_s + SHUTDOWN_ALLOWANCE_S)
        cmd = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "-H", spec.target, "-u", str(spec.users), "-r", f"{spec.spawn_rate:g}",
            # The locustfile ends the run at the end of its window; --run-time is a backstop
            # whose expiry leaves the figures marked incomplete.
            "-t", f"{backstop}s",
            "--only-summary", "--stop-timeout", "0", "--exit-code-on-error", "0",
            "--csv", str(spec.out_dir / "locust"), "--html", str(spec.out_dir / "report.html"),
        ]  # fmt: skip
        if master_port is not None:
            cmd += [
                "--master", "--expect-workers", str(spec.workers),
                "--expect-workers-max-wait", f"{WORKERS_MAX_WAIT_S:g}",
                "--master-bind-host", "127.0.0.1", "--master-bind-port", str(master_port),
            ]  # fmt: skip
        return cmd

    def worker_command(self, master_port: int) -> list[str]:
        return [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker",
            "-H", self.spec.target, "--master-host", "127.0.0.1",
            "--master-port", str(master_port), "--only-summary",
        ]  # fmt: skip

    def start(self) -> None:
        out = self.spec.out_dir
        out.mkdir(parents=True, exist_ok=True)
        self.figures_path.unlink(missing_ok=True)
        plan_path = out / "locust-plan.json"
        self.spec.plan.write(plan_path)
        env = self._env(plan_path)
        distributed = self.spec.workers > 1
        port = _free_port() if distributed else None
        self.main = subprocess.Popen(
            self.command(port),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=out,
            start_new_session=True,
        )
        log = open(out / "locust.log", "wb")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        self._reader = threading.Thread(
            target=self._pump, args=(self.main.stdout, log), daemon=True
        )
        self._reader.start()
        if port is not None:
            for index in range(self.spec.workers):
                wlog = open(out / f"locust-worker-{index}.log", "wb")  # noqa: SIM115
                self._logs.append(wlog)
                self.workers.append(
                    subprocess.Popen(
                        self.worker_command(port),
                        stdout=wlog,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        env=env,
                        cwd=out,
                        start_new_session=True,
                    )
                )

    def _pump(self, stream: IO[bytes] | None, log: IO[bytes]) -> None:
        """Turn progress lines into callbacks; keep everything else in locust.log."""
        if stream is None:
            return
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", errors="replace")
            if text.startswith(PROGRESS_PREFIX):
                try:
                    self.on_progress(json.loads(text[len(PROGRESS_PREFIX) :]))
                    continue
                except ValueError:
                    pass
            log.write(raw)
            log.flush()

    @property
    def running(self) -> bool:
        return self.main is not None and self.main.poll() is None

    def check_workers(self) -> None:
        """A worker that dies mid-run leaves the load short: stop the run, note why.

        Workers exit with 0 when the master tells them to quit at the end of the run, so
        only a non-zero exit (a crash, a signal) counts.
        """
        if not self.running:
            return
        for index, worker in enumerate(self.workers):
            code = worker.poll()
            if code is not None and code != 0:
                self.problem = (
                    f"Locust worker {index} exited early with code {code} "
                    f"(see {self.spec.out_dir / f'locust-worker-{index}.log'})"
                )
                self.terminate()
                return

    def terminate(self) -> None:
        """Ask the master to stop (it still writes its figures, marked incomplete)."""
        if self.running and self.main is not None:
            _signal_group(self.main, signal.SIGTERM)

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop every process of this run and its children; close logs."""
        procs = [p for p in [self.main, *self.workers] if p is not None]
        for proc in procs:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=5)
        for log in self._logs:
            log.close()
        self._logs.clear()

    def result(self) -> RunResult:
        problem = self.problem
        code = self.main.returncode if self.main is not None else None
        if problem is None and code not in (0, None):
            problem = f"Locust exited with code {code} (see {self.spec.out_dir / 'locust.log'})"
        figures = read_figures(self.figures_path)
        if figures is None and problem is None:
            problem = f"Locust left no figures (see {self.spec.out_dir / 'locust.log'})"
        return RunResult(figures=figures, problem=problem)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_all(
    specs: list[RunSpec],
    on_progress: ProgressCallback,
    *,
    startup_allowance_s: float = STARTUP_ALLOWANCE_S,
) -> dict[str, RunResult]:
    """Start every run at once, wait for all of them, return each run's result by label.

    A run still going ``startup_allowance_s`` after its planned end is stopped and its
    result carries the reason. Interrupts (Ctrl-C, or SIGTERM mapped to KeyboardInterrupt
    by the caller) stop every process before propagating.
    """
    runs = [LocustRun(spec, on_progress) for spec in specs]
    longest = max(s.plan.warmup_s + s.plan.duration_s for s in specs)
    deadline = time.monotonic() + longest + startup_allowance_s
    try:
        for run in runs:
            run.start()
        while any(run.running for run in runs):
            for run in runs:
                run.check_workers()
            if time.monotonic() > deadline:
                for run in runs:
                    if run.running:
                        run.problem = (
                            f"Locust did not finish within {longest + startup_allowance_s:.0f} s "
                            "and was stopped"
                        )
                        run.terminate()
                break
            time.sleep(0.1)
    finally:
        for run in runs:
            run.stop()
    return {run.label: run.result() for run in runs}
