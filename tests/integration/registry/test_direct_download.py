"""`kubellm fetch-model` over plain HTTP: the same files as MLflow's client, without MLflow.

Against a real ``mlflow server --serve-artifacts`` the download must equal MLflow's own,
file for file, with ``mlflow`` never imported; against a scripted server every case the
standard library must not handle (a redirect, an unsafe path, a short file, an artifact
store the server does not proxy) answers None, so that MLflow's client takes over.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from kubellm.registry.direct import ARTIFACTS_ENDPOINT, download_proxied, unsupported_reason
from localkube.testing.mlflow import mlflow_server
from tests.conftest import REPO_ROOT


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "registered_model_meta"
    }


def test_fetch_model_over_http_equals_mlflows_download_without_importing_mlflow(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    import mlflow

    with mlflow_server(tmp_path / "server") as url:
        client = mlflow.MlflowClient(url)
        run = client.create_run(client.create_experiment("direct"))
        client.log_artifacts(run.info.run_id, str(tiny_model_dir), "model")
        client.log_text(run.info.run_id, "flavors: {}\n", "model/MLmodel")
        client.create_registered_model("direct-bot")
        source = f"{run.info.artifact_uri}/model"  # mlflow-artifacts:/..., as training's
        version = client.create_model_version("direct-bot", source, run.info.run_id).version
        client.set_registered_model_alias("direct-bot", "production", version)
        reference = tmp_path / "by-mlflow"
        reference.mkdir()
        # set_registry_uri also exports MLFLOW_REGISTRY_URI (for subprocesses) and "" does
        # not unset it: left behind, every later test's MLflow subprocess would talk to this
        # server after it stopped and retry for minutes
        before = os.environ.get("MLFLOW_REGISTRY_URI")
        mlflow.set_registry_uri(url)
        try:
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/direct-bot/{version}",
                dst_path=str(reference),
                tracking_uri=url,
            )
        finally:
            mlflow.set_registry_uri("")
            if before is None:
                os.environ.pop("MLFLOW_REGISTRY_URI", None)
            else:
                os.environ["MLFLOW_REGISTRY_URI"] = before
        script = (
            "import sys; from pathlib import Path; "
            "from kubellm.serving.loading import fetch_model; "
            "print(fetch_model(sys.argv[1], Path(sys.argv[2]), sys.argv[3])); "
            "print('mlflow' in sys.modules)"
        )
        dst = tmp_path / "fetched"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
        done = subprocess.run(
            [sys.executable, "-c", script, "models:/direct-bot@production", str(dst), url],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO_ROOT,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    model_dir, imported = done.stdout.split()
    assert imported == "False", "fetch-model imported mlflow"
    assert (Path(model_dir) / "config.json").exists()
    assert _tree(dst) == _tree(reference)
    meta = (dst / "registered_model_meta").read_text()
    assert '"direct-bot"' in meta and f'"{version}"' in meta


# ------------------------------------------------------------------ a scripted server
class Scripted:
    """Answers the three REST calls from ``files``; ``tweak`` bends one answer."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"MLmodel": b"flavors: {}\n", "model/config.json": b"{}"}
        self.download_uri = "mlflow-artifacts:/0/models/m-1/artifacts"
        self.listing_override: dict[str, list[dict[str, Any]]] = {}
        self.size_lie = False
        self.redirect_files = False
        self.authorizations: list[str | None] = []

    def listing(self, path: str) -> list[dict[str, Any]]:
        if path in self.listing_override:
            return self.listing_override[path]
        rel = path.removeprefix("0/models/m-1/artifacts").strip("/")
        entries: dict[str, dict[str, Any]] = {}
        for name, data in self.files.items():
            if rel and not name.startswith(rel + "/"):
                continue
            head = name[len(rel) + 1 :] if rel else name
            first, _, rest = head.partition("/")
            size = len(data) + (1 if self.size_lie else 0)
            entries[first] = {"path": first, "is_dir": bool(rest)}
            if not rest:
                entries[first]["file_size"] = size
        return list(entries.values())


@pytest.fixture
def scripted() -> Iterator[tuple[Scripted, str]]:
    script = Scripted()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def _json(self, body: Any, status: int = 200) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            script.authorizations.append(self.headers.get("Authorization"))
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/api/2.0/mlflow/registered-models/alias":
                self._json({"model_version": {"name": query["name"], "version": "3"}})
            elif url.path == "/api/2.0/mlflow/model-versions/get-download-uri":
                self._json({"artifact_uri": script.download_uri})
            elif url.path == ARTIFACTS_ENDPOINT:
                self._json({"files": script.listing(query["path"])})
            elif url.path.startswith(ARTIFACTS_ENDPOINT + "/0/models/m-1/artifacts/"):
                if script.redirect_files:
                    self.send_response(302)
                    self.send_header("Location", "http://127.0.0.2:9/elsewhere")
                    self.end_headers()
                    return
                name = url.path.removeprefix(ARTIFACTS_ENDPOINT + "/0/models/m-1/artifacts/")
                data = script.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            else:
                self._json({"error_code": "ENDPOINT_NOT_FOUND"}, 404)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield script, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_sends_mlflows_basic_auth_and_lays_out_the_files(
    scripted: tuple[Scripted, str], tmp_path: Path
) -> None:
    script, url = scripted
    env = {"MLFLOW_TRACKING_USERNAME": "reader", "MLFLOW_TRACKING_PASSWORD": "pw"}
    model_dir = download_proxied("models:/bot@production", tmp_path / "m", url, env)
    assert model_dir == tmp_path / "m" / "model"
    assert (tmp_path / "m" / "MLmodel").read_bytes() == b"flavors: {}\n"
    expected = "Basic " + base64.standard_b64encode(b"reader:pw").decode()
    assert script.authorizations and set(script.authorizations) == {expected}
    assert '"3"' in (tmp_path / "m" / "registered_model_meta").read_text()


def test_sends_a_token_as_bearer(scripted: tuple[Scripted, str], tmp_path: Path) -> None:
    script, url = scripted
    assert download_proxied("models:/bot/3", tmp_path / "m", url, {"MLFLOW_TRACKING_TOKEN": "t"})
    assert set(script.authorizations) == {"Bearer t"}


@pytest.mark.parametrize(
    "bend",
    ["redirect", "unsafe-path", "short-file", "s3-store", "other-host"],
)
def test_what_the_standard_library_must_not_handle_goes_to_mlflow(
    scripted: tuple[Scripted, str], tmp_path: Path, bend: str
) -> None:
    script, url = scripted
    if bend == "redirect":
        script.redirect_files = True
    elif bend == "unsafe-path":
        script.listing_override["0/models/m-1/artifacts"] = [
            {"path": "../escaped", "is_dir": False, "file_size": 2}
        ]
    elif bend == "short-file":
        script.size_lie = True
    elif bend == "s3-store":
        script.download_uri = "s3://bucket/0/models/m-1/artifacts"
    else:
        script.download_uri = "mlflow-artifacts://127.0.0.2:9/0/models/m-1/artifacts"
    assert download_proxied("models:/bot/3", tmp_path / "m", url, {}) is None
    assert not (tmp_path / "escaped").exists()


@pytest.mark.parametrize(
    ("uri", "env", "reason"),
    [
        ("sqlite:///x.db", {}, "not http(s)"),
        ("https://u:p@mlflow.example", {}, "carries credentials"),
        ("https://mlflow.example", {"MLFLOW_TRACKING_AUTH": "plugin"}, "MLFLOW_TRACKING_AUTH"),
        ("https://mlflow.example", {"MLFLOW_TRACKING_AWS_SIGV4": "true"}, "SIGV4"),
        ("https://mlflow.example", {"MLFLOW_TRACKING_CLIENT_CERT_PATH": "/c"}, "CLIENT_CERT"),
        ("https://mlflow.example", {"MLFLOW_WORKSPACE": "team"}, "MLFLOW_WORKSPACE"),
    ],
)
def test_mlflow_client_features_are_left_to_mlflow(
    uri: str, env: dict[str, str], reason: str
) -> None:
    found = unsupported_reason(uri, env)
    assert found is not None and reason in found
    assert unsupported_reason("https://mlflow.example", {"MLFLOW_TRACKING_TOKEN": "t"}) is None
