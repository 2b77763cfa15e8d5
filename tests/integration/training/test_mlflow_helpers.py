"""The MLflow helpers other tests reuse: sqlite URI and a lean loopback server."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import psutil

from localkube.testing.mlflow import mlflow_server, sqlite_tracking_uri


def test_sqlite_uri_keeps_artifacts_in_the_temporary_folder(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    uri = sqlite_tracking_uri(tmp_path / "db")
    for exp in MlflowClient(uri).search_experiments():
        assert exp.artifact_location.startswith((tmp_path / "db").as_uri())


def test_server_answers_health_and_leaves_no_process(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with mlflow_server(tmp_path) as url:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
            assert resp.status == 200
        client = MlflowClient(url)
        exp = client.create_experiment("t")
        run = client.create_run(exp)
        client.log_text(run.info.run_id, "hello", "note.txt")  # served artifacts
        assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["note.txt"]
        started = {p.pid for p in psutil.Process().children(recursive=True)} - before
        assert started
    alive = [pid for pid in started if psutil.pid_exists(pid)]
    assert not [p for p in alive if psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
