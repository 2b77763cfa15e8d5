"""The HTTP server's wiring: the app, its lifespan, its error handlers and middleware.

What each part does lives in its own module: the routes (``routes``, with completion and
chat as ``dialects``), the model's lifecycle (``lifecycle``: loading -> ready -> draining,
which ``/healthz`` and ``/readyz`` report truthfully), loading the model (``loading``),
metrics (``metrics``) and the body limit (``bodylimit``). This module only connects them.

Every failure is a ``ServingError`` turned into a response by one handler here
(``errors`` knows the codes and the body); Starlette's own refusals and unexpected
exceptions get OpenAI's ``{"error": {...}}`` shape too. ``/healthz`` fails when the
engine thread has died, so the kubelet restarts the pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kubellm.serving.bodylimit import BodyLimit
from kubellm.serving.errors import InvalidInput, ServingError, error_body, headers_for
from kubellm.serving.lifecycle import ServerState
from kubellm.serving.loading import load_into
from kubellm.serving.metrics import Metrics, MetricsMiddleware
from kubellm.serving.routes import Routes

__all__ = ["create_app"]

log = logging.getLogger(__name__)


async def _on_serving_error(_: Request, exc: ServingError) -> JSONResponse:
    return JSONResponse(error_body(exc), status_code=exc.status_code, headers=headers_for(exc))


async def _on_http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own refusals (unparsable body, wrong method) in OpenAI's shape."""
    if isinstance(exc.__cause__, UnicodeDecodeError):
        message = f"the request body is not valid UTF-8: {exc.__cause__.reason}"
    else:
        message = str(exc.detail)
    err = InvalidInput(message)
    return JSONResponse(error_body(err), status_code=exc.status_code, headers=exc.headers)


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error", exc_info=exc)
    err = ServingError(f"internal error: {type(exc).__name__}")
    return JSONResponse(error_body(err), status_code=500)


async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid body"}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    if first.get("type") == "json_invalid":
        err = InvalidInput(f"request body is not valid JSON: {first.get('msg')}", param=None)
    else:
        param = ".".join(loc) or "body"
        err = InvalidInput(f"{param}: {first.get('msg')}", param=param)
    return await _on_serving_error(request, err)


async def _on_not_found(request: Request, _: Exception) -> JSONResponse:
    err = InvalidInput(f"no route {request.method} {request.url.path}")
    return JSONResponse(error_body(err), status_code=404)


def create_app(
    state: ServerState, loader: Callable[[ServerState], None] | None = load_into
) -> FastAPI:
    """The FastAPI application; ``loader`` runs on a thread after start-up (None: skip)."""
    metrics = Metrics(state)
    if state.settings.served_model_name:
        state.served_name = state.settings.served_model_name
    # Two workers bound the memory a burst of large prompts can take at once.
    tokenizing = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kubellm-tokenize")

    def load() -> None:
        assert loader is not None
        try:
            loader(state)
        except Exception as exc:
            log.exception("loading the model failed")
            state.status = "failed"
            state.error = f"{type(exc).__name__}: {exc}"

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if loader is not None:
            log.info("HTTP server starting; loading the model")
            threading.Thread(target=load, name="kubellm-loader", daemon=True).start()
        yield
        if state.engine is not None:
            await asyncio.to_thread(state.engine.stop)
        tokenizing.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="kubellm serve", lifespan=lifespan)
    app.state.kubellm = state
    app.state.metrics = metrics
    for key, handler in (
        (ServingError, _on_serving_error),
        (StarletteHTTPException, _on_http_error),
        (Exception, _on_unexpected),
        (RequestValidationError, _on_validation_error),
        (404, _on_not_found),
    ):
        app.exception_handler(key)(handler)
    Routes(state, metrics, tokenizing).register(app)
    app.add_middleware(BodyLimit, state=state)  # type: ignore[arg-type]
    app.add_middleware(MetricsMiddleware, state=state, metrics=metrics)  # type: ignore[arg-type]
    return app
