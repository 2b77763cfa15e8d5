"""``kubellm fetch-model`` from an MLflow registry on sqlite, then serving the fetched files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from tests.conftest import REPO_ROOT
from tests.integration.serving.conftest import start_server


@pytest.fixture(scope="module")
def registry(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A sqlite registry holding the tiny model as version 1 of ``support-bot``, alias prod."""
    import mlflow
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("serving-test", artifact_location=str(root / "artifacts"))
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    with mlflow.start_run(experiment_id=exp):
        info = mlflow.transformers.log_model(
            transformers_model={"model": model, "tokenizer": tokenizer},
            name="model",
            task="text-generation",
            pip_requirements=["transformers", "torch"],
        )
    version = mlflow.register_model(info.model_uri, "support-bot")
    mlflow.MlflowClient().set_registered_model_alias("support-bot", "prod", version.version)
    return uri


def _fetch(uri: str, dest: Path, registry_uri: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBELLM_TERMINATION_LOG": str(dest.parent / "termination.log")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "kubellm",
            "fetch-model",
            uri,
            str(dest),
            "--tracking-uri",
            registry_uri,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
    )


def test_fetch_model_by_alias_then_serve_it_with_an_api_key(registry: str, tmp_path: Path) -> None:
    done = _fetch("models:/support-bot@prod", tmp_path / "model", registry)
    assert done.returncode == 0, done.stderr
    model_dir = Path(done.stdout.strip().splitlines()[-1])
    assert (model_dir / "config.json").exists()

    key_file = tmp_path / "key"
    key_file.write_text("s3cret\n")
    server = start_server(
        str(tmp_path / "model"),
        tmp_path,
        "--api-key-file",
        str(key_file),
        env={"KUBELLM_SERVED_MODEL_NAME": "support-bot"},
    )
    try:
        good = openai.OpenAI(base_url=server.v1, api_key="s3cret", max_retries=0)
        r = good.chat.completions.create(
            model="support-bot", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
        )
        assert r.usage is not None and r.usage.completion_tokens <= 4
        bad = openai.OpenAI(base_url=server.v1, api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
    finally:
        server.stop()


def test_fetch_model_of_a_missing_alias_exits_3_with_the_reason(
    registry: str, tmp_path: Path
) -> None:
    done = _fetch("models:/support-bot@nope", tmp_path / "model", registry)
    assert done.returncode == 3
    assert "nope" in done.stderr
    assert "nope" in (tmp_path / "termination.log").read_text()
