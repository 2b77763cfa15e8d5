"""Which tracking servers a process may reach with its registry client.

The MLflow client sends the credentials in its environment (``MLFLOW_TRACKING_USERNAME`` /
``PASSWORD`` / ``TOKEN``) to whatever tracking URI it is given. The operator holds such
credentials, and an LLM's ``spec.mlflow.trackingUri`` is written by whoever may create an
LLM: were every URI reached, naming a listener of one's own would collect the operator's
password, and naming an internal address would make the operator a request forger.

So the operator reaches only the tracking URIs its configuration lists (by default its
own ``--tracking-uri``), and so sends its credentials only there. http(s) URIs match by
scheme, host, port and path (case of scheme and host, default ports and a trailing slash
do not matter); any other scheme (``file:``, ``sqlite:``, ``databricks:``) is reached only
when the configuration names that exact URI (local mode). A URI with credentials in it
(``https://user:pw@host``) is refused unless configured verbatim: credentials belong in a
Secret, where they are not printed. Pure: no I/O, tested without any server.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from kubellm.redaction import has_userinfo, redact
from kubellm.registry.errors import TrackingUriRefused

__all__ = ["ALLOWLIST_VARIABLE", "TrackingAccess", "canonical_http_uri"]

#: where an administrator widens the allowlist (named in every refusal)
ALLOWLIST_VARIABLE = "KUBELLM_ALLOWED_TRACKING_URIS"

_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_http_uri(uri: str) -> str | None:
    """``scheme://host:port/path`` of an http(s) URI, or None for any other URI.

    Userinfo is dropped, scheme and host are lowercased, the default port is made explicit
    and a trailing slash removed, so that equal servers compare equal.
    """
    try:
        parts = urlsplit(uri.strip())
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            return None
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:  # a port that is not a number, or out of range
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{host}:{port}{path}{query}"


@dataclass(frozen=True)
class TrackingAccess:
    """The tracking URIs a process may reach (exactly as configured)."""

    allowed: tuple[str, ...] = ()

    @classmethod
    def of(cls, default: str | None, extra: Iterable[str] = ()) -> TrackingAccess:
        """The default tracking URI plus the configured extra ones (blanks dropped)."""
        uris = [u.strip() for u in (default, *extra) if u and u.strip()]
        return cls(tuple(dict.fromkeys(uris)))

    def _http_allowed(self) -> set[str]:
        return {c for c in map(canonical_http_uri, self.allowed) if c is not None}

    def describe(self) -> str:
        """The allowlist as it may be shown (redacted)."""
        return ", ".join(redact(u) for u in self.allowed) or "none"

    def check(self, uri: str) -> None:
        """Raise `TrackingUriRefused` unless ``uri`` may be reached."""
        text = uri.strip()
        if text in self.allowed:
            return  # configured verbatim by the administrator
        shown = redact(text)
        if has_userinfo(text):
            raise TrackingUriRefused(
                f"tracking URI {shown} carries credentials: put them in the Secret named "
                "by spec.mlflow.credentialsSecret, not in the URI"
            )
        canonical = canonical_http_uri(text)
        if canonical is None:
            raise TrackingUriRefused(
                f"tracking URI {shown} is refused: the operator speaks http(s) only, other "
                f"schemes only when configured (allowed: {self.describe()})"
            )
        if canonical not in self._http_allowed():
            raise TrackingUriRefused(
                f"tracking URI {shown} is not allowed by the operator's configuration "
                f"(allowed: {self.describe()}; an administrator adds servers with "
                f"{ALLOWLIST_VARIABLE})"
            )
