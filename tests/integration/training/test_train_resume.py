"""A training stopped mid-way (pod deleted or evicted) resumes from its last checkpoint."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.integration.training.conftest import CORPUS, subprocess_env

STEPS = 80


def test_rerun_after_sigterm_continues_from_the_checkpoint_in_the_same_run(
    mlflow_uri: str, registry: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    term = tmp_path / "termination-log"
    cmd = [sys.executable, "-m", "kubellm.training", "--llm-name", "bot-resume",
           "--method", "pretrain", "--architecture", "gpt2-tiny", "--dataset", str(CORPUS),
           "--tracking-uri", mlflow_uri, "--output-dir", str(out), "--max-steps", str(STEPS),
           "--save-steps", "10", "--batch-size", "8", "--sequence-length", "64",
           "--logging-steps", "10", "--vocab-size", "300"]  # fmt: skip
    env = subprocess_env(KUBELLM_TERMINATION_LOG=str(term))
    with open(tmp_path / "first.log", "wb") as log:
        first = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 90
            while not list(out.glob("checkpoints-*/checkpoint-*/trainer_state.json")):
                assert first.poll() is None, (tmp_path / "first.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "no checkpoint within 90 s"
                time.sleep(0.02)
            first.send_signal(signal.SIGTERM)  # what the kubelet sends a deleted pod
            assert first.wait(timeout=60) == 143
        finally:
            if first.poll() is None:
                first.kill()
            first.wait(timeout=30)
    stopped = json.loads(term.read_text())
    assert stopped["errorKind"] == "terminated" and stopped["error"] == "terminated by SIGTERM"
    run_id = json.loads((out / "kubellm-run.json").read_text())["run_id"]
    assert stopped["runId"] == run_id
    assert registry.mlflow.get_run(run_id).info.status == "KILLED"

    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert second.returncode == 0, second.stderr[-3000:]
    summary = json.loads(term.read_text())
    assert summary["resumedFromStep"] >= 10
    assert summary["steps"] == STEPS
    assert summary["stepsRun"] == STEPS - summary["resumedFromStep"] < STEPS
    assert summary["runId"] == run_id  # the same MLflow run continues
    assert summary["modelVersion"] == "1"
    assert registry.mlflow.get_run(run_id).info.status == "FINISHED"
    assert "(resumed)" in second.stdout
