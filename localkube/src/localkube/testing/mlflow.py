"""Local MLflow for tests, benchmarks and the demo: a sqlite URI or a lean tracking server.

Two ways to get an MLflow that needs no network and leaves nothing behind:

- ``sqlite_tracking_uri(tmp_dir)``: a sqlite database in ``tmp_dir``; the client writes to it
  directly. Enough for runs, registered models, aliases and ``models:/`` loading. With a
  sqlite URI MLflow's default artifact root is ``./mlruns`` *relative to the current
  directory*, so the default experiment is created here with an explicit
  ``artifact_location`` inside ``tmp_dir`` (see docs/field-notes.md).
- ``mlflow_server(tmp_dir)``: a real ``mlflow server`` subprocess on a free loopback port,
  for code that must talk HTTP (the operator's webhook receiver, pods in localkube).
  Started lean (one worker, no job runner: it starts sooner and holds a fraction of the
  default's memory), and always stopped with its whole process group, so no process
  outlives the caller; if the caller is killed, the kernel kills the server
  (PR_SET_PDEATHSIG) and a watchdog (:class:`localkube.lifetime.Guard`) stops the workers
  it had started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from localkube.lifetime import Guard, die_with_parent

__all__ = [
    "MlflowServerError",
    "ensure_default_experiment",
    "mlflow_server",
    "sqlite_tracking_uri",
]


class MlflowServerError(RuntimeError):
    """The MLflow server did not become healthy (its log tail is in the message)."""


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def ensure_default_experiment(tracking_uri: str, artifact_root: Path) -> None:
    """Give both ``Default`` and ``kubellm`` experiments artifact folders under ``artifact_root``.

    For a new sqlite database the store is created here with ``artifact_root`` as its default
    root, so MLflow's experiment 0 (made by the migrations) points inside the temporary folder
    rather than at ``./mlruns`` of whatever the current directory is. The ``kubellm``
    experiment (the one ``kubellm train`` uses by default) is created with an explicit
    location. Idempotent.
    """
    from mlflow import MlflowClient

    artifact_root.mkdir(parents=True, exist_ok=True)
    root_uri = artifact_root.resolve().as_uri()
    if tracking_uri.startswith("sqlite:"):
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        SqlAlchemyStore(tracking_uri, root_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    if client.get_experiment_by_name("kubellm") is None:
        client.create_experiment("kubellm", artifact_location=f"{root_uri}/kubellm")


def sqlite_tracking_uri(tmp_dir: Path | str, *, name: str = "mlflow") -> str:
    """A ``sqlite:///`` tracking URI in ``tmp_dir`` whose experiment ``kubellm`` keeps its
    artifacts in ``tmp_dir/<name>-artifacts`` (never ``./mlruns``).

    Creating the database runs MLflow's migrations, which take seconds: share one per test
    session.
    """
    tmp = Path(tmp_dir).resolve()
    tmp.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{tmp / (name + '.db')}"
    ensure_default_experiment(uri, tmp / f"{name}-artifacts")
    return uri


def _server_env(webhooks: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if webhooks:
        from cryptography.fernet import Fernet

        env["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"] = "http,https"
        env["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"] = "true"
        env.setdefault("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", Fernet.generate_key().decode())
    return env


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and every process it started (its own process group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


@contextmanager
def mlflow_server(
    tmp_dir: Path | str,
    *,
    webhooks: bool = False,
    host: str = "127.0.0.1",
    port: int | None = None,
    startup_timeout: float = 60.0,
) -> Iterator[str]:
    """Run ``mlflow server`` on loopback for the duration of the ``with`` block; yield its URL.

    Backend: sqlite in ``tmp_dir``; artifacts: served by the server (``--serve-artifacts``)
    from ``tmp_dir/artifacts``, so clients need no shared filesystem. With ``webhooks=True``
    the server may deliver registry webhooks to loopback ``http://`` receivers.
    """
    tmp = Path(tmp_dir).resolve()
    tmp.mkdir(parents=True, exist_ok=True)
    port = port or _free_port(host)
    url = f"http://{host}:{port}"
    log_path = tmp / "mlflow-server.log"
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{tmp / 'mlflow-server.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        str(tmp / "artifacts"),
    ]
    guard = Guard("mlflow")
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=guard.env(_server_env(webhooks)),
                cwd=tmp,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGKILL),
            )
        except BaseException:
            guard.close()
            raise
    try:
        deadline = time.monotonic() + startup_timeout
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise MlflowServerError(f"mlflow server at {url} did not start:\n{tail}")
            time.sleep(0.2)
        yield url
    finally:
        try:
            _stop(proc)
        finally:
            guard.close()
