"""One side of the differential check: a cluster, driven by raw HTTP, kubectl and the client.

A :class:`Side` wraps one running cluster (localkube's emulator or a real kube-apiserver) and
offers the three ways the checklist talks to it: raw HTTP requests (to see status codes and
Status bodies exactly as sent), the real kubectl 1.35, and the `kubernetes` Python client.
Everything it returns is reduced by the normalisers below to what must not differ between
two conforming servers: codes, reasons, causes, message shapes, event type sequences, table
headers. Values that legitimately differ (resourceVersions, uids, timestamps, ages, IPs)
are replaced by placeholders before comparison.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import re
import ssl
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from localkube.testing.localkube import Cluster

JSON = dict[str, Any]
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@dataclass
class Reply:
    """An HTTP answer: its code and its decoded JSON body (None when not JSON)."""

    code: int
    body: Any


@dataclass
class Side:
    """One cluster under test. `name` is "localkube" or "real"."""

    name: str
    cluster: Cluster
    _ctx: ssl.SSLContext | None = field(default=None, init=False, repr=False)
    _headers: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _api: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._ctx, self._headers = _credentials(self.cluster.kubeconfig_path)

    # -- kubectl -------------------------------------------------------------------------
    def kubectl(
        self, *args: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(*args, input=input, timeout=timeout)

    # -- the Python client ---------------------------------------------------------------
    @property
    def api(self) -> Any:
        if self._api is None:
            self._api = self.cluster.load_kube_config()
        return self._api

    # -- raw HTTP ------------------------------------------------------------------------
    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        url = urllib.parse.urlsplit(self.cluster.url)
        host, port = url.hostname or "127.0.0.1", url.port
        if url.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._ctx)
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
        accept: str = "application/json",
        timeout: float = 30,
    ) -> Reply:
        """One request; the reply's JSON body whatever the code."""
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        data: bytes | None = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        conn = self._connection(timeout)
        try:
            headers = {**self._headers, "Accept": accept}
            if data is not None:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw.decode(errors="replace")
        return Reply(resp.status, decoded)

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """`call` that must succeed (2xx); returns the body."""
        reply = self.call(method, path, body, **kw)
        assert 200 <= reply.code < 300, f"{self.name}: {method} {path}: {reply}"
        return reply.body

    @contextlib.contextmanager
    def watch(
        self, path: str, query: dict[str, str], *, timeout: float = 10, accept: str = ""
    ) -> Iterator[WatchStream]:
        """An open watch stream (`watch=true` is added)."""
        conn = self._connection(timeout)
        full = f"{path}?{urllib.parse.urlencode({'watch': 'true', **query})}"
        headers = {**self._headers, "Accept": accept or "application/json"}
        conn.request("GET", full, headers=headers)
        resp = conn.getresponse()
        try:
            yield WatchStream(resp)
        finally:
            conn.close()

    # -- helpers -------------------------------------------------------------------------
    def namespace(self, name: str) -> str:
        """Create namespace `name` (same name on both sides, so messages compare equal)."""
        reply = self.call("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        assert reply.code in (201, 409), f"{self.name}: namespace {name}: {reply}"
        return name

    def drop_namespace(self, name: str) -> None:
        self.call("DELETE", f"/api/v1/namespaces/{name}")

    def wait(
        self, fn: Callable[[], Any], *, timeout: float = 30, what: str = "", interval: float = 0.2
    ) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"{self.name}: timed out waiting for {what}: last {last!r}")


class WatchStream:
    """Reads one watch response line by line."""

    def __init__(self, resp: http.client.HTTPResponse) -> None:
        self.resp = resp
        self.code = resp.status

    def next(self, timeout: float = 10) -> JSON | None:
        """The next event, or None when the stream ends or stays silent for `timeout`."""
        sock = getattr(getattr(self.resp.fp, "raw", None), "_sock", None)
        if sock is not None:
            sock.settimeout(timeout)
        try:
            line = self.resp.readline()
        except TimeoutError:
            return None
        if not line:
            return None
        event: JSON = json.loads(line)
        return event

    def take(self, n: int, timeout: float = 10) -> list[JSON]:
        events: list[JSON] = []
        while len(events) < n:
            event = self.next(timeout)
            if event is None:
                break
            events.append(event)
        return events

    def body(self) -> Any:
        raw = self.resp.read()
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")


def _credentials(kubeconfig: Path) -> tuple[ssl.SSLContext | None, dict[str, str]]:
    """TLS context (CA, client certificate) and auth headers from a kubeconfig's first user."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    ctx: ssl.SSLContext | None = None
    if cluster["server"].startswith("https"):
        ca = cluster.get("certificate-authority-data")
        ctx = ssl.create_default_context(cadata=base64.b64decode(ca).decode() if ca else None)
        if "client-certificate-data" in user:
            with tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False) as pem:
                pem.write(base64.b64decode(user["client-certificate-data"]))
                pem.write(b"\n")
                pem.write(base64.b64decode(user["client-key-data"]))
            ctx.load_cert_chain(pem.name)
            Path(pem.name).unlink()
    headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
    return ctx, headers


# -- normalisers ---------------------------------------------------------------------------

_UID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NUMBER = re.compile(r"\d+")


def shape_message(message: str) -> str:
    """A message with uids and numbers (resourceVersions, ports) replaced by placeholders."""
    return _NUMBER.sub("N", _UID.sub("UID", message))


def status(reply: Reply | JSON | None, *, message: bool = True) -> JSON:
    """The comparable part of a Status answer (or of a success: only the code)."""
    if isinstance(reply, Reply):
        code, body = reply.code, reply.body
    else:
        body = reply or {}
        code = body.get("code", 0)
    if not isinstance(body, dict) or body.get("kind") != "Status":
        return {"code": code}
    details = body.get("details") or {}
    out: JSON = {
        "code": code,
        "status": body.get("status"),
        "reason": body.get("reason"),
        "details": {k: details.get(k) for k in ("name", "group", "kind") if details.get(k)},
    }
    causes = details.get("causes")
    if causes:
        out["causes"] = sorted(
            (c.get("reason", ""), c.get("field", ""), shape_message(c.get("message", "")))
            for c in causes
        )
    if message:
        out["message"] = shape_message(body.get("message", ""))
    return out


def header(stdout: str) -> list[str]:
    """The column names kubectl printed on its first line."""
    lines = stdout.splitlines()
    return re.split(r"\s{2,}", lines[0].strip()) if lines else []


def rv(obj: JSON) -> int:
    return int(obj["metadata"]["resourceVersion"])


_TIME_COLUMNS = {"AGE", "LAST SEEN", "FIRST SEEN", "CREATED AT", "DURATION", "MADE"}


def table(stdout: str) -> list[list[str]]:
    """kubectl's table output as rows of cells, times (ages, timestamps) masked as `*`."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        return []
    head = header(stdout)
    starts: list[int] = []
    for name in head:  # search on from the previous column: NAME is inside NAMESPACE
        starts.append(lines[0].index(name, starts[-1] + 1 if starts else 0))
    rows = [head]
    for line in lines[1:]:
        cells = [
            line[a : (starts[i + 1] if i + 1 < len(starts) else None)].strip()
            for i, a in enumerate(starts)
        ]
        rows.append(["*" if head[i] in _TIME_COLUMNS else c for i, c in enumerate(cells)])
    return rows


def lines(text: str) -> list[str]:
    """Output lines with runs of blanks folded (kubectl pads columns by content width)."""
    return [re.sub(r"\s+", " ", line).strip() for line in text.splitlines() if line.strip()]
