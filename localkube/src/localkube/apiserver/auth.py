"""Authentication for the API server: one bearer token, checked on every request.

Without it, anything on the machine that can reach the port is cluster-admin: an
unauthenticated POST of a Pod runs a command as the user running localkube, and
`GET /api/v1/secrets` hands out every credential. The cluster writes a random token into its
kubeconfig (mode 0600), which kubectl, the `kubernetes` client, kopf and localkube's own
controllers read, and every request must carry `Authorization: Bearer <token>`; anything
else gets the 401 `Status` a kube-apiserver sends. As on a kube-apiserver with anonymous
access limited to public info, the health endpoints and `/version` stay open (test
harnesses poll health before they have a kubeconfig).

The token travels over TLS (:mod:`.certs`): kubectl sends a kubeconfig's credentials to
`https://` servers only. The server also refuses to listen on anything but a loopback
address unless told so explicitly: the API is cluster-admin for whoever holds the token, and
a localkube is meant for one user on one machine.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import os
import secrets
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from aiohttp import web

from .errors import ApiError

__all__ = [
    "ANONYMOUS_PATHS",
    "Credentials",
    "NotLoopback",
    "bearer_auth",
    "check_host",
    "new_token",
    "read_credentials",
    "write_private",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ANONYMOUS_PATHS = frozenset({"/_localkube/healthz", "/healthz", "/livez", "/readyz", "/version"})


class NotLoopback(ValueError):
    """A non-loopback listen address without the explicit opt-in."""


def new_token() -> str:
    """A random bearer token (256 bits)."""
    return secrets.token_urlsafe(32)


def check_host(host: str, *, allow_non_loopback: bool = False) -> None:
    """Raise :class:`NotLoopback` unless `host` is a loopback address (or allowed anyway)."""
    if allow_non_loopback or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise NotLoopback(
            f"refusing to serve the API on {host}: not a loopback address (anyone who reaches "
            "it could try the token, and pods run as you); pass --allow-non-loopback to do "
            "it anyway"
        )


def bearer_auth(token: str) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Middleware: 401 for any request without `Authorization: Bearer <token>`."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method in ("GET", "HEAD") and request.path in ANONYMOUS_PATHS:
            return await handler(request)
        given = request.headers.get("Authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            raise ApiError(401, "Unauthorized", reason="Unauthorized")
        return await handler(request)

    return authenticate


def write_private(path: Path, text: str) -> Path:
    """Write `text` to `path` readable and writable by this user only (mode 0600).

    The file is created 0600 (never briefly world-readable) and an existing one is
    tightened first, then replaced atomically.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a leftover temporary file keeps its old mode otherwise
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class Credentials:
    """What a client needs from a localkube kubeconfig: where, which token, which CA."""

    server: str
    token: str = ""
    ca_pem: str = ""

    def ssl_context(self) -> ssl.SSLContext | None:
        """A context trusting the cluster's CA (None when the kubeconfig names none)."""
        return ssl.create_default_context(cadata=self.ca_pem) if self.ca_pem else None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def read_credentials(path: Path) -> Credentials:
    """The current context's server, token and CA of a kubeconfig (first entries otherwise)."""
    config = yaml.safe_load(Path(path).read_text()) or {}
    current = config.get("current-context")
    context = next(
        (c.get("context") or {} for c in config.get("contexts") or [] if c.get("name") == current),
        {},
    )

    def pick(section: str, name: str | None) -> dict[str, str]:
        entries = config.get(section + "s") or []
        chosen = next((e for e in entries if e.get("name") == name), entries[0] if entries else {})
        return dict(chosen.get(section) or {})

    cluster, user = pick("cluster", context.get("cluster")), pick("user", context.get("user"))
    ca = cluster.get("certificate-authority-data") or ""
    return Credentials(
        server=str(cluster.get("server") or ""),
        token=str(user.get("token") or ""),
        ca_pem=base64.b64decode(ca).decode() if ca else "",
    )
