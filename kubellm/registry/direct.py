"""Downloading a registry version over MLflow's REST API, without importing MLflow.

A serving pod's init container (``kubellm fetch-model``) is on the path of every start from
zero, and ``import mlflow`` alone costs ~2.3 s of CPU before the first request goes out
(on a busy 2-core node it was 6 of the init container's 8 s). Yet when the tracking server
proxies artifacts (``mlflow server --serve-artifacts``, the default since MLflow 2), all
the init container needs is plain HTTP: the version's download URI
(``model-versions/get-download-uri``, after ``registered-models/alias`` for an alias),
then the listing and the files under ``/api/2.0/mlflow-artifacts/artifacts``.

`download_proxied` does that with the standard library, and answers None wherever it
would not do exactly what MLflow's client does: a tracking URI that is not http(s) or
carries credentials, an authentication MLflow adds itself (``MLFLOW_TRACKING_AUTH``
plugins, AWS SigV4, a client certificate, a workspace header, ``~/.mlflow/credentials``),
an artifact store the server does not proxy (``s3://``, ``gs://``, a path), a redirect, and
any failed request. The caller then downloads through `Registry.download_model`, MLflow's
own client, with its retries and its mapping of errors, as before. Only a full disk ends it
here (`DiskFull`): a second download would fill the disk again.

Credentials come from MLflow's variables and travel as MLflow sends them: basic auth from
``MLFLOW_TRACKING_USERNAME``/``PASSWORD``, else ``MLFLOW_TRACKING_TOKEN`` as a bearer token;
``MLFLOW_TRACKING_INSECURE_TLS`` and ``MLFLOW_TRACKING_SERVER_CERT_PATH`` as MLflow reads
them; ``MLFLOW_HTTP_REQUEST_TIMEOUT`` per request. Listed paths are checked as MLflow checks
them (nothing absolute, no ``..``), and each file's size against the listing.
"""

from __future__ import annotations

import base64
import errno
import json
import logging
import os
import posixpath
import shutil
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubellm.registry.client import find_model_dir, parse_model_uri
from kubellm.registry.errors import DiskFull

__all__ = ["ARTIFACTS_ENDPOINT", "download_proxied", "unsupported_reason"]

log = logging.getLogger(__name__)

ARTIFACTS_ENDPOINT = "/api/2.0/mlflow-artifacts/artifacts"

#: variables with which MLflow's client would add what this module does not send
_CLIENT_ONLY_VARIABLES = (
    "MLFLOW_TRACKING_AUTH",
    "MLFLOW_TRACKING_AWS_SIGV4",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "MLFLOW_WORKSPACE",
)
_TRUE = ("true", "1", "t", "yes", "y")
_CHUNK = 1 << 20


class _Skip(Exception):
    """This download is not for the standard library: let MLflow's client do it."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_: Any, **__: Any) -> None:
        return None  # a 3xx surfaces as HTTPError: the credentials stay with the server


def unsupported_reason(tracking_uri: str, env: Mapping[str, str]) -> str | None:
    """Why MLflow's client must download from ``tracking_uri`` (None: plain HTTP will do)."""
    parts = urllib.parse.urlsplit(tracking_uri)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return f"tracking URI scheme {parts.scheme or 'none'!r} is not http(s)"
    if parts.username or parts.password:
        return "the tracking URI carries credentials"
    for name in _CLIENT_ONLY_VARIABLES:
        if env.get(name):
            return f"{name} is set"
    if Path("~/.mlflow/credentials").expanduser().exists():
        return "~/.mlflow/credentials exists"
    return None


class _Http:
    """GETs against one tracking server, with MLflow's credentials and TLS settings."""

    def __init__(self, tracking_uri: str, env: Mapping[str, str]) -> None:
        self.base = tracking_uri.rstrip("/")
        self.timeout = float(env.get("MLFLOW_HTTP_REQUEST_TIMEOUT") or 120)
        self.headers = {"User-Agent": "kubellm-fetch-model"}
        user, password = env.get("MLFLOW_TRACKING_USERNAME"), env.get("MLFLOW_TRACKING_PASSWORD")
        if user and password:
            pair = base64.standard_b64encode(f"{user}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {pair}"
        elif env.get("MLFLOW_TRACKING_TOKEN"):
            self.headers["Authorization"] = f"Bearer {env['MLFLOW_TRACKING_TOKEN']}"
        handlers: list[Any] = [_NoRedirect()]
        if self.base.lower().startswith("https:"):
            if (env.get("MLFLOW_TRACKING_INSECURE_TLS") or "").lower() in _TRUE:
                context = ssl._create_unverified_context()
            else:
                context = ssl.create_default_context(
                    cafile=env.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None
                )
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self.opener = urllib.request.build_opener(*handlers)

    def open(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        request = urllib.request.Request(url, headers=self.headers)
        try:
            return self.opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise _Skip(f"GET {path}: HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:
            raise _Skip(f"GET {path}: {exc}") from None

    def json(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        with self.open(path, params) as resp:
            try:
                data = json.loads(resp.read())
            except (ValueError, RecursionError) as exc:
                raise _Skip(f"GET {path}: not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise _Skip(f"GET {path}: not a JSON object")
        return data


def _artifact_root(download_uri: str, tracking_uri: str) -> str:
    """The path under ``ARTIFACTS_ENDPOINT`` that holds a version's files."""
    parts = urllib.parse.urlsplit(download_uri)
    base = urllib.parse.urlsplit(tracking_uri)
    if parts.scheme == "mlflow-artifacts" and parts.netloc in ("", base.netloc):
        return parts.path.strip("/")
    if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
        prefix = base.path.rstrip("/") + ARTIFACTS_ENDPOINT
        if parts.path.startswith(prefix + "/"):
            return parts.path[len(prefix) :].strip("/")
    raise _Skip(f"artifacts at {parts.scheme or 'a path'}:, not proxied by the tracking server")


def _safe(path: str) -> str:
    """A listed path as MLflow accepts it: relative, without ``..`` or a drive."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or ".." in parts or ":" in parts[0]:
        raise _Skip(f"unsafe artifact path {path!r}")
    return path


def _download_tree(http: _Http, root: str, rel: str, dst: Path) -> int:
    """Every file under ``root/rel`` into ``dst/rel``; the number of files."""
    listed = http.json(ARTIFACTS_ENDPOINT, {"path": posixpath.join(root, rel) if rel else root})
    count = 0
    for entry in listed.get("files") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise _Skip(f"listing of {rel or '/'}: an entry without a path")
        name = posixpath.join(rel, _safe(entry["path"])) if rel else _safe(entry["path"])
        if entry.get("is_dir"):
            count += _download_tree(http, root, name, dst)
            continue
        target = dst / name
        target.parent.mkdir(parents=True, exist_ok=True)
        quoted = urllib.parse.quote(posixpath.join(root, name))
        with http.open(f"{ARTIFACTS_ENDPOINT}/{quoted}") as resp, open(target, "wb") as out:
            shutil.copyfileobj(resp, out, _CHUNK)
        size = entry.get("file_size")
        if size is not None and target.stat().st_size != int(size):
            raise _Skip(f"{name}: {target.stat().st_size} bytes, the listing says {size}")
        count += 1
    return count


def _version(http: _Http, name: str, version: str | None, alias: str | None) -> str:
    if version is not None:
        return version
    found = http.json(
        "/api/2.0/mlflow/registered-models/alias", {"name": name, "alias": alias or ""}
    )
    resolved = (found.get("model_version") or {}).get("version")
    if resolved is None:
        raise _Skip(f"alias {alias!r} of {name!r}: no version in the answer")
    return str(resolved)


def download_proxied(
    uri: str, dst: Path, tracking_uri: str, env: Mapping[str, str] | None = None
) -> Path | None:
    """Download ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` into ``dst`` over plain
    HTTP; the folder that holds config.json, or None when MLflow's client must do it."""
    env = os.environ if env is None else env
    reason = unsupported_reason(tracking_uri, env)
    if reason is not None:
        log.info("downloading %s with MLflow's client: %s", uri, reason)
        return None
    name, version, alias = parse_model_uri(uri)
    http = _Http(tracking_uri, env)
    try:
        version = _version(http, name, version, alias)
        answer = http.json(
            "/api/2.0/mlflow/model-versions/get-download-uri", {"name": name, "version": version}
        )
        download_uri = answer.get("artifact_uri")
        if not isinstance(download_uri, str) or not download_uri:
            raise _Skip("get-download-uri: no artifact_uri in the answer")
        dst.mkdir(parents=True, exist_ok=True)
        count = _download_tree(http, _artifact_root(download_uri, tracking_uri), "", dst)
        if not (dst / "MLmodel").exists() and count == 0:
            raise _Skip(f"no files under {download_uri}")
        if (dst / "MLmodel").exists():  # as MLflow's models:/ repository records it
            (dst / "registered_model_meta").write_text(
                f"model_name: {json.dumps(name)}\nmodel_version: {json.dumps(version)}\n"
            )
        model_dir = find_model_dir(dst)
    except _Skip as exc:
        log.info("downloading %s with MLflow's client: %s", uri, exc)
        return None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFull(f"download {uri}: no space left on the local disk (disk full)") from exc
        log.info("downloading %s with MLflow's client: %s", uri, exc)
        return None
    except Exception as exc:  # ModelNotFound from find_model_dir, or a surprise: MLflow decides
        log.info("downloading %s with MLflow's client: %s", uri, exc)
        return None
    log.info(
        "downloaded %s (version %s, %d files) over HTTP; process CPU %.2fs",
        uri,
        version,
        count,
        time.process_time(),
    )
    return model_dir
