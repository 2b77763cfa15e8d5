"""Kubernetes `Status` error bodies.

Every failure the emulator returns is an :class:`ApiError`, rendered in exactly one place as
the `kind: Status` body that clients key on: kopf keeps only bodies with `kind: Status`, the
Python client surfaces `reason`, and kubectl prints `message`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["REASONS", "ApiError", "status_body"]

REASONS: dict[int, str] = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


class ApiError(Exception):
    """An API failure with the HTTP code, reason and details of a Kubernetes Status."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        name: str = "",
        group: str = "",
        kind: str = "",
        causes: list[dict[str, str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = REASONS.get(code, "Unknown") if reason is None else reason
        self.name = name
        self.group = group
        self.kind = kind
        self.causes = causes
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return status_body(
            self.code,
            self.message,
            reason=self.reason,
            name=self.name,
            group=self.group,
            kind=self.kind,
            causes=self.causes,
            retry_after=self.retry_after,
        )


def status_body(
    code: int,
    message: str,
    *,
    reason: str | None = None,
    name: str = "",
    group: str = "",
    kind: str = "",
    causes: list[dict[str, str]] | None = None,
    retry_after: int | None = None,
) -> dict[str, Any]:
    """The `Status` object for a failure (`details` carries name/group/kind(plural)).

    `reason=""` leaves the reason out, as kube-apiserver does for errors its storage layer
    raises (a malformed resourceVersion is a 500 without one).
    """
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if kind:
        details["kind"] = kind
    if causes:
        details["causes"] = causes
    if retry_after is not None:
        details["retryAfterSeconds"] = retry_after
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": REASONS.get(code, "Unknown") if reason is None else reason,
        "code": code,
    }
    if not body["reason"]:  # upstream's storage errors carry none
        del body["reason"]
    if details:
        body["details"] = details
    return body
