"""`make demo` (that is, `kubellm demo --once`) ends with a promoted version and an endpoint
that answers; every process it started is gone afterwards, even after a SIGKILLed demo.

A demo is the longest e2e test (a cluster, MLflow, the operator, a training, a load test),
so on localkube the demo that follows a SIGKILLed one is also the one whose output and
clean-up are checked; on a real control plane one demo runs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from .conftest import E2E_CLUSTER

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _processes_under(path: Path) -> list[str]:
    """Processes whose command line or working directory lies in ``path``."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            cwd = proc.info["cwd"] or ""
        except (psutil.Error, TypeError):
            continue
        if str(path) in cmd or cwd.startswith(str(path)):
            found.append(f"{proc.info['pid']}: {cmd[:120]}")
    return found


def _assert_promoted_and_clean(out: str, workdir: Path) -> None:
    """What `make demo` must leave a user: a promoted version, the gateway's address as the
    endpoint with ways to call it, an answered completion, and no process behind."""
    words = " ".join(out.split())  # rich wraps long lines at 80 columns without a terminal
    assert "version 1 promoted" in words, out[-4000:]
    assert "endpoint check: completion ->" in words, out[-4000:]
    assert "endpoint (the kubellm gateway): http://" in words, out[-4000:]
    assert "curl -s http://127." in words and "OpenAI(base_url=" in words, out[-4000:]
    time.sleep(1)
    assert _processes_under(workdir) == []


@pytest.mark.skipif(
    E2E_CLUSTER == "localkube",
    reason="on localkube the demo after a SIGKILLed one (below) checks the same, one demo less",
)
def test_demo_once_promotes_the_example_and_cleans_up(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubellm",
            "demo",
            "--once",
            "--control-plane",
            E2E_CLUSTER,
            "--workdir",
            str(tmp_path),
            "--timeout",
            "600",
        ],
        capture_output=True,
        text=True,
        timeout=840,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - started
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    print(f"kubellm demo --once took {elapsed:.0f}s")
    _assert_promoted_and_clean(out, tmp_path)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []


def _alive(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid}: {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            continue
    return out


@pytest.mark.timeout(1500)  # two demos
@pytest.mark.skipif(
    E2E_CLUSTER == "real",
    reason="process lifetime is the demo's own code whatever the cluster: run once, on localkube",
)
def test_sigkilled_demo_leaves_nothing_and_the_next_demo_promotes(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "kubellm", "demo", "--once", "--workdir", str(tmp_path)]
    log_path = tmp_path.parent / f"{tmp_path.name}-first-demo.log"
    with open(log_path, "w") as log:
        first = subprocess.Popen(
            [*cmd, "--timeout", "600"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 300
        training: list[str] = []
        while time.monotonic() < deadline and not training and first.poll() is None:
            time.sleep(1)
            training = [p for p in _alive(_descendants(first.pid)) if "kubellm train" in p]
        assert training, f"no training pod started; demo log:\n{log_path.read_text()[-3000:]}"
        procs = _descendants(first.pid)
        assert len(procs) >= 6, _alive(procs)  # MLflow, localkube, watchdogs, operator, training
        first.kill()
        first.wait(10)
        killed = time.monotonic()
        while _alive(procs) and time.monotonic() - killed < 5:
            time.sleep(0.1)
        left = _alive(procs) + _processes_under(tmp_path)
        assert left == [], left
        took = time.monotonic() - killed
        print(f"{len(procs)} processes of the killed demo gone {took:.1f}s after SIGKILL")
    finally:
        if first.poll() is None:
            first.kill()

    started = time.monotonic()
    result = subprocess.run(
        [*cmd, "--timeout", "600"],
        capture_output=True,
        text=True,
        timeout=840,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - started
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "died without stopping" in " ".join(out.split()), out[-4000:]
    assert (tmp_path / "previous-run" / "mlflow").is_dir()
    print(f"kubellm demo --once after a SIGKILLed one took {elapsed:.0f}s")
    _assert_promoted_and_clean(out, tmp_path)
