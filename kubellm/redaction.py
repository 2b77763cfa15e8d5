"""Keeping credentials written into URIs (``https://user:password@host``) out of sight.

A tracking URI, a dataset URI or an error message quoting one can carry userinfo, and the
text ends up where many people read it: an LLM's ``status.message``, Events, the argv of
child containers, termination messages, MLflow tags. Everything that writes to such a place
passes its text through `redact`; what hands a URI to a child passes it through
`strip_userinfo`. This module imports nothing of ours, so every layer may use it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["REDACTED", "has_userinfo", "redact", "redact_tree", "strip_userinfo"]

REDACTED = "***"

# scheme://userinfo@ : userinfo may hold an unencoded "@" (greedy up to the last one before
# the host) but never "/", "?", "#" or whitespace, so the match never runs into a path.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#\s]+)@")


def redact(text: str) -> str:
    """``text`` with the userinfo of every URI in it replaced by ``***``."""
    if "@" not in text:
        return text
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)


def redact_tree(value: Any) -> Any:
    """`redact` applied to every string inside a JSON-like value (dicts, lists, scalars)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v) for v in value]
    return value


def has_userinfo(uri: str) -> bool:
    """Whether ``uri`` carries a user name or password before its host."""
    return bool(_USERINFO.match(uri.strip()))


def strip_userinfo(uri: str) -> str:
    """``uri`` without its userinfo: what a child may be given to reach the same server."""
    if not has_userinfo(uri):
        return uri
    parts = urlsplit(uri.strip())
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
