"""Paged lists: `limit` and `continue`, with kube-apiserver's token and answers.

A list with `limit=N` returns at most N items (ordered by namespace, then name, as etcd
orders keys), `metadata.continue` when more remain, and `remainingItemCount` when no
selector makes that count costly upstream. The token is the one kube-apiserver hands out
(base64url of `{"v": "meta.k8s.io/v1", "rv": <first page's RV>, "start": <key>\\0}`), and
every later page reports the first page's resourceVersion, so a client that watches from it
misses nothing. One difference stays (docs/emulator.md): later pages show the objects as
they are now, not as they were at that resourceVersion, since localkube keeps no snapshots.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ApiError

__all__ = ["Page", "paginate", "storage_key"]

_API_VERSION = "meta.k8s.io/v1"
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list."
)


@dataclass
class Page:
    items: list[dict[str, Any]]
    resource_version: int
    continue_token: str = ""
    remaining: int | None = None

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"resourceVersion": str(self.resource_version)}
        if self.continue_token:
            meta["continue"] = self.continue_token
        if self.remaining is not None:
            meta["remainingItemCount"] = self.remaining
        return meta


def storage_key(obj: dict[str, Any]) -> str:
    """`<namespace>/<name>` (or `<name>`): lists come in this order, as etcd keys sort."""
    meta = obj["metadata"]
    ns = meta.get("namespace") or ""
    return f"{ns}/{meta['name']}" if ns else str(meta["name"])


def _encode(rv: int, start: str) -> str:
    body = json.dumps({"v": _API_VERSION, "rv": rv, "start": start + "\x00"}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def _invalid(detail: str) -> ApiError:
    return ApiError(400, f"invalid continue token: continue key is not valid: {detail}")


def _decode(token: str) -> tuple[int, str]:
    """(resourceVersion, start key) of a token; 400 with Go's decoder words when malformed."""
    bad = _B64URL.fullmatch(token) is None
    if bad or len(token) % 4 == 1:
        at = next((i for i, c in enumerate(token) if not _B64URL.fullmatch(c)), len(token) - 1)
        raise _invalid(f"illegal base64 data at input byte {at}")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as e:
        raise _invalid("illegal base64 data at input byte 0") from e
    try:
        body = json.loads(raw)
    except ValueError as e:
        text = raw.decode(errors="replace").lstrip()
        detail = (
            f"invalid character {text[0]!r} looking for beginning of value"
            if text and text[0] not in '{["-0123456789tfn'
            else "unexpected end of JSON input"
        )
        raise _invalid(detail) from e
    if not isinstance(body, dict) or body.get("v") != _API_VERSION:
        raise _invalid(f"incorrect encoded start resourceVersion (version {_API_VERSION})")
    rv, start = body.get("rv"), body.get("start")
    if not isinstance(rv, int) or rv <= 0 or not isinstance(start, str):
        raise _invalid("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    return rv, start.rstrip("\x00")


def paginate(
    items: list[dict[str, Any]],
    *,
    limit: str | None,
    token: str,
    current_rv: int,
    too_old: Callable[[int], bool],
    selected: bool,
) -> Page:
    """The page of `items` (in key order) that `limit` and `continue` ask for.

    `too_old(rv)`: whether the store no longer answers for `rv` (a token from before that is
    upstream's 410 Expired). `selected`: a label or field selector was applied.
    """
    rv = current_rv
    if token:
        rv, start = _decode(token)
        if too_old(rv):
            raise ApiError(410, TOO_OLD, reason="Expired")
        items = [o for o in items if storage_key(o) > start]
    try:
        size = int(limit) if limit else 0
    except ValueError:
        size = 0
    if size <= 0 or len(items) <= size:
        return Page(items, rv)
    page = items[:size]
    remaining = None if selected else len(items) - size
    return Page(page, rv, _encode(rv, storage_key(page[-1])), remaining)
