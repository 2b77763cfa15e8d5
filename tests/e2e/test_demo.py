"""`make demo` (that is, `kubellm demo --once`) ends with a promoted version and an endpoint
that answers; every process it started is gone afterwards."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

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


def test_demo_once_promotes_the_example_and_cleans_up(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubellm",
            "demo",
            "--once",
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
    assert "version 1 promoted" in out, out[-4000:]
    assert "endpoint check: completion ->" in out
    assert "curl -s http://127." in out and "OpenAI(base_url=" in out
    print(f"kubellm demo --once took {elapsed:.0f}s")
    time.sleep(1)
    assert _processes_under(tmp_path) == []
