"""A server whose model cannot load says why and exits non-zero (so the pod restarts)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, free_port


def test_missing_model_exits_1_and_writes_the_reason(tmp_path: Path) -> None:
    log = tmp_path / "termination.log"
    env = {**os.environ, "KUBELLM_TERMINATION_LOG": str(log), "KUBELLM_PORT": str(free_port())}
    env["KUBELLM_HOST"] = "127.0.0.1"
    done = subprocess.run(
        [sys.executable, "-m", "kubellm", "serve", "--model", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert done.returncode == 1
    assert "does not exist" in log.read_text()


def test_serve_without_a_model_is_a_usage_error() -> None:
    env = {k: v for k, v in os.environ.items() if k != "KUBELLM_MODEL"}
    done = subprocess.run(
        [sys.executable, "-m", "kubellm", "serve"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert done.returncode == 2 and "--model" in done.stderr
