"""The same `kubellm train` runs under torchrun (DDP, two CPU processes over gloo)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import free_port
from tests.integration.training.conftest import CORPUS, subprocess_env


def test_torchrun_with_two_processes_trains_once_and_registers_once(
    mlflow_uri: str, registry: Any, tmp_path: Path
) -> None:
    term = tmp_path / "termination-log"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
           "-m", "kubellm.training", "--llm-name", "bot-ddp", "--method", "pretrain",
           "--architecture", "gpt2-tiny", "--dataset", str(CORPUS), "--tracking-uri", mlflow_uri,
           "--output-dir", str(tmp_path / "out"), "--max-steps", "10", "--batch-size", "4",
           "--sequence-length", "64", "--logging-steps", "5", "--vocab-size", "300"]  # fmt: skip
    env = subprocess_env(KUBELLM_TERMINATION_LOG=str(term))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(term.read_text())
    assert summary["modelVersion"] == "1" and summary["runId"]
    # tokens/s counts both processes' batches: 2 x 4 x 64 tokens per step
    assert summary["steps"] == 10
    assert [str(v.version) for v in registry.mlflow.search_model_versions("name='bot-ddp'")] == [
        "1"
    ]
    # one copy of each progress line (rank 0's), one summary on stdout
    assert done.stdout.count("step 10/10 (100%)") == 1
    assert done.stdout.count('"status":"succeeded"') == 1
