"""Loopback sockets that stand in for tracking servers: one that records every request's
headers and answers like an MLflow server that knows no model, a port that refuses
connections, and a blackhole that accepts connections and never answers."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class RecordingServer:
    url: str
    requests: list[Recorded] = field(default_factory=list)

    @property
    def authorizations(self) -> list[str]:
        return [r.headers["Authorization"] for r in self.requests if "Authorization" in r.headers]


@contextmanager
def recording_server() -> Iterator[RecordingServer]:
    """An HTTP listener on 127.0.0.1 that records each request and answers 404
    RESOURCE_DOES_NOT_EXIST (what MLflow says of an unknown model or alias)."""
    record = RecordingServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            record.requests.append(Recorded(self.command, self.path, dict(self.headers)))
            body = json.dumps(
                {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "not found"}
            ).encode()
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    record.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        server.shutdown()
        server.server_close()


def refused_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@contextmanager
def blackhole() -> Iterator[str]:
    """A listening socket that never accepts: connects succeed (kernel backlog), no answer."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()
