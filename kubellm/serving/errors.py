"""Domain exceptions of the server and their one mapping onto HTTP.

Routes and the engine raise these by meaning (the input is wrong, the model is not
there, the server is full, the model is not ready). Each class carries its HTTP status;
``error_body`` and ``headers_for`` are the only places that know the OpenAI error body
shape and the headers a status needs, and the app's one exception handler uses them, so
a client sees the same ``{"error": {message, type, param, code}}`` for every failure, as
OpenAI's SDKs expect.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "EngineFailure",
    "InvalidInput",
    "ModelNotFound",
    "ModelNotReady",
    "Overloaded",
    "PayloadTooLarge",
    "RequestTimeout",
    "ServingError",
    "Unauthorized",
    "error_body",
    "headers_for",
]


class ServingError(Exception):
    """Base class: every error the server reports to a client."""

    status_code = 500
    error_type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidInput(ServingError):
    """The request can never succeed as sent (bad JSON, bad field, prompt too long)."""

    status_code = 400
    error_type = "invalid_request_error"


class PayloadTooLarge(InvalidInput):
    """The request body is larger than this server accepts (refused before it is read)."""

    status_code = 413
    code = "request_too_large"


class Unauthorized(ServingError):
    """Missing or wrong API key."""

    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class ModelNotFound(ServingError):
    """The request names a model this server does not serve."""

    status_code = 404
    error_type = "invalid_request_error"
    code = "model_not_found"


class Overloaded(ServingError):
    """The waiting queue is full: try again after ``retry_after`` seconds."""

    status_code = 429
    error_type = "rate_limit_exceeded"
    code = "queue_full"

    def __init__(self, message: str, *, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class ModelNotReady(ServingError):
    """The model is still loading, or the server is draining for shutdown."""

    status_code = 503
    error_type = "service_unavailable"
    code = "model_not_ready"


class RequestTimeout(ServingError):
    """A non-streamed request ran past the server's request timeout; it was cancelled."""

    status_code = 504
    error_type = "timeout"
    code = "request_timeout"


class EngineFailure(ServingError):
    """The model failed while generating this request (other requests are unaffected)."""

    status_code = 500
    error_type = "server_error"
    code = "generation_failed"


def error_body(exc: ServingError) -> dict[str, Any]:
    """The OpenAI-shaped error body for ``exc``."""
    return {
        "error": {
            "message": exc.message,
            "type": exc.error_type,
            "param": exc.param,
            "code": exc.code,
        }
    }


def headers_for(exc: ServingError) -> dict[str, str]:
    if isinstance(exc, Overloaded):
        return {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, ModelNotReady):
        return {"Retry-After": "1"}
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": "Bearer"}
    return {}
