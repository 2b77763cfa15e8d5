"""The HTTP surface: OpenAI-compatible routes, health, and Prometheus metrics.

Routes are thin, KServe-style: validate (``protocol``), check limits, hand the request
to the engine, encode its events as JSON or server-sent events. Every failure is a
``ServingError`` turned into a response by one handler (``errors``). The model lifecycle
(loading -> ready -> draining) is one ``ServerState`` that ``/healthz`` and ``/readyz``
report truthfully: ready only after the model is loaded and a warm-up generation ran,
not ready from the first instant of a shutdown.

Nothing a client sends can stall the others: bodies above a limit derived from the prompt
limit are refused unread (413), text that cannot fit the prompt limit is refused before
tokenising, tokenising and chat templating run on a small thread pool off the event loop,
and non-streamed requests end after ``--request-timeout`` (504). ``/healthz`` fails when
the engine thread has died, so the kubelet restarts the pod. Every error, Starlette's and
unexpected ones included, has OpenAI's ``{"error": {...}}`` shape.

``max_tokens`` above ``--max-new-tokens`` is refused with a 400 that states the limit
(a client asking for more than it can get should know); a ``max_tokens`` that merely does
not fit in the model's context after the prompt is clamped to what fits, and the
response then ends with ``finish_reason: "length"``. Without ``max_tokens``, completions
get OpenAI's default of 16 tokens and chat completions ``--max-new-tokens``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

from kubellm.serving.engine import Engine, EngineConfig
from kubellm.serving.errors import (
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    PayloadTooLarge,
    RequestTimeout,
    ServingError,
    Unauthorized,
    error_body,
    headers_for,
)
from kubellm.serving.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    Usage,
    chat_chunk,
    chat_response,
    completion_chunk,
    completion_response,
    models_response,
    new_id,
)
from kubellm.serving.streams import (
    ErrorEvent,
    FinishEvent,
    RequestStream,
    SamplingParams,
    TokenEvent,
)

__all__ = ["Metrics", "ServerSettings", "ServerState", "create_app", "load_into"]

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80)
TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


@dataclass(frozen=True)
class ServerSettings:
    model: str
    served_model_name: str | None = None
    max_batch_size: int = 32
    max_queue: int = 256
    max_step_tokens: int = 256
    max_new_tokens: int = 512
    max_prompt_tokens: int | None = None
    api_key: str | None = None
    chat_template: str | None = None
    device: str = "cpu"
    dtype: str = "auto"
    tracking_uri: str | None = None
    download_dir: Path | None = None
    shutdown_grace: float = 30.0
    warmup_tokens: int = 4
    # Largest request body; None: derived from the prompt limit (see body_limit).
    max_body_bytes: int | None = None
    # Non-streamed requests are cancelled after this long (streams end when clients go).
    request_timeout: float = 600.0


@dataclass
class ServerState:
    """The model's lifecycle, shared by the routes, the loader and the shutdown path."""

    settings: ServerSettings
    status: str = "loading"  # loading | ready | draining | failed
    engine: Engine | None = None
    served_name: str = ""
    context_len: int = 0
    created: int = field(default_factory=lambda: int(time.time()))
    error: str | None = None
    inflight: int = 0
    max_token_chars: int = 64  # longest token of the vocabulary, in characters

    @property
    def ready(self) -> bool:
        return self.status == "ready" and self.engine is not None and self.engine.alive

    def prompt_token_limit(self) -> int:
        """The most prompt tokens a request may have: the flag, else the model's context."""
        return self.settings.max_prompt_tokens or self.context_len or 32768

    def body_limit(self) -> int:
        """Request bodies above this are refused unread: 32 bytes per allowed prompt token
        (JSON-escaped text stays well below it) plus 64 KiB for the rest of the request."""
        return self.settings.max_body_bytes or self.prompt_token_limit() * 32 + 65536


class Metrics:
    """The Prometheus series the load-test gate and the HPA read."""

    def __init__(self, state: ServerState) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "kubellm_requests",
            "Requests by route and HTTP status.",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "kubellm_request_duration_seconds",
            "End-to-end request latency, to the last byte.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "kubellm_time_to_first_token_seconds",
            "From request arrival to the first generated token.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            "kubellm_inter_token_latency_seconds",
            "Time between consecutive generated tokens of one request.",
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "kubellm_prompt_tokens", "Prompt tokens of admitted requests.", registry=r
        )
        self.generation_tokens = Counter(
            "kubellm_generation_tokens", "Generated tokens.", registry=r
        )
        running = Gauge("kubellm_running_batch_size", "Sequences in the running batch.", registry=r)
        running.set_function(lambda: float(state.engine.running if state.engine else 0))
        queue = Gauge("kubellm_queue_depth", "Requests waiting to join the batch.", registry=r)
        queue.set_function(lambda: float(state.engine.waiting if state.engine else 0))
        inflight = Gauge(
            "kubellm_inflight_requests",
            "Generation requests being served (queued or running); the HPA's metric.",
            registry=r,
        )
        inflight.set_function(lambda: float(state.inflight))
        ready = Gauge("kubellm_model_ready", "1 when the model is loaded and warm.", registry=r)
        ready.set_function(lambda: 1.0 if state.ready else 0.0)


def load_into(state: ServerState) -> None:
    """Load the model, start the engine, warm it up, then mark the state ready (blocking)."""
    import os
    import tempfile

    import torch

    from kubellm.serving.loading import load_model, resolve_model_dir

    s = state.settings
    download_dir = s.download_dir or Path(tempfile.mkdtemp(prefix="kubellm-model-"))
    model_dir = resolve_model_dir(s.model, s.tracking_uri, download_dir)
    loaded = load_model(model_dir, device=s.device, chat_template=s.chat_template, dtype=s.dtype)
    engine = Engine(
        loaded.model,
        loaded.tokenizer,
        EngineConfig(
            max_batch_size=s.max_batch_size,
            max_queue=s.max_queue,
            max_step_tokens=s.max_step_tokens,
        ),
        context_len=loaded.context_len,
        eos_ids=loaded.eos_ids,
        pad_id=loaded.pad_id,
    )
    engine.start()
    started = time.monotonic()
    warm_ids = loaded.tokenizer("Hello")["input_ids"] or [loaded.pad_id]
    engine.generate(warm_ids, max_new_tokens=s.warmup_tokens, timeout=120)
    log.info(
        "model %s warm in %.2fs (%d torch threads, OMP_WAIT_POLICY=%s)",
        model_dir,
        time.monotonic() - started,
        torch.get_num_threads(),
        os.environ.get("OMP_WAIT_POLICY", "unset"),
    )
    state.engine = engine
    state.context_len = loaded.context_len
    state.max_token_chars = _longest_token_chars(loaded.tokenizer)
    if not state.served_name:
        state.served_name = _default_name(s.model, model_dir)
    if state.status == "loading":
        state.status = "ready"


def _longest_token_chars(tokenizer: Any) -> int:
    """No token decodes to more characters than its vocabulary entry has (byte-level BPE
    spells each byte as one character; SentencePiece spells a space as one)."""
    try:
        return max(8, *(len(t) for t in tokenizer.get_vocab()))
    except Exception:  # a tokenizer without a vocabulary listing: a generous bound
        return 256


def _default_name(spec: str, model_dir: Path) -> str:
    if spec.startswith("models:/"):
        return spec.removeprefix("models:/").split("/")[0].split("@")[0]
    path = Path(spec)
    return path.name or model_dir.name


def _sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


class _MetricsMiddleware:
    """Counts /v1 requests by status, times them to the last byte, tracks in-flight ones."""

    def __init__(self, app: Any, state: ServerState, metrics: Metrics) -> None:
        self.app, self.state, self.metrics = app, state, metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/v1/") or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        started = time.monotonic()
        self.state.inflight += 1
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.state.inflight -= 1
            self.metrics.requests.labels(path, str(status["code"])).inc()
            self.metrics.latency.labels(path).observe(time.monotonic() - started)


async def _send_error(send: Any, exc: ServingError) -> None:
    body = json.dumps(error_body(exc)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in headers_for(exc).items()]
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _BodyLimit:
    """Refuses POST bodies over ``state.body_limit()`` with a 413 before reading the rest.

    A declared Content-Length over the limit is refused unread; a chunked body is read up
    to the limit and refused there. Under the limit the body is handed on as one piece.
    """

    def __init__(self, app: Any, state: ServerState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        limit = self.state.body_limit()
        too_large = PayloadTooLarge(
            f"the request body is over this server's limit of {limit} bytes "
            "(derived from --max-prompt-tokens; set --max-body-bytes to change it)"
        )
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _send_error(send, too_large)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = bool(message.get("more_body"))
            if size > limit:
                await _send_error(send, too_large)
                return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


@dataclass
class _Prepared:
    prompt_ids: list[int]
    params: SamplingParams
    max_new_tokens: int


def create_app(
    state: ServerState, loader: Callable[[ServerState], None] | None = load_into
) -> FastAPI:
    """The FastAPI application; ``loader`` runs on a thread after start-up (None: skip)."""
    settings = state.settings
    metrics = Metrics(state)
    if settings.served_model_name:
        state.served_name = settings.served_model_name

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if loader is not None:
            threading.Thread(target=_load, name="kubellm-loader", daemon=True).start()
        yield
        if state.engine is not None:
            await asyncio.to_thread(state.engine.stop)
        tokenizing.shutdown(wait=False, cancel_futures=True)

    def _load() -> None:
        assert loader is not None
        try:
            loader(state)
        except Exception as exc:
            log.exception("loading the model failed")
            state.status = "failed"
            state.error = f"{type(exc).__name__}: {exc}"

    # Tokenising and chat templating run here, never on the event loop; two workers bound
    # the memory a burst of large prompts can take at once.
    tokenizing = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kubellm-tokenize")
    app = FastAPI(title="kubellm serve", lifespan=lifespan)
    app.state.kubellm = state
    app.state.metrics = metrics

    @app.exception_handler(ServingError)
    async def _serving_error(_: Request, exc: ServingError) -> JSONResponse:
        return JSONResponse(error_body(exc), status_code=exc.status_code, headers=headers_for(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Starlette's own refusals (unparsable body, wrong method) in OpenAI's shape."""
        if isinstance(exc.__cause__, UnicodeDecodeError):
            message = f"the request body is not valid UTF-8: {exc.__cause__.reason}"
        else:
            message = str(exc.detail)
        err = InvalidInput(message)
        return JSONResponse(error_body(err), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error", exc_info=exc)
        err = ServingError(f"internal error: {type(exc).__name__}")
        return JSONResponse(error_body(err), status_code=500)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid body"}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        if first.get("type") == "json_invalid":
            err = InvalidInput(f"request body is not valid JSON: {first.get('msg')}", param=None)
        else:
            param = ".".join(loc) or "body"
            err = InvalidInput(f"{param}: {first.get('msg')}", param=param)
        return await _serving_error(_, err)

    def _authorize(request: Request) -> None:
        if not settings.api_key:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), settings.api_key.encode()
        ):
            raise Unauthorized("missing or invalid API key (send Authorization: Bearer KEY)")

    def _check_serving(model: str) -> Engine:
        if state.status == "draining":
            raise ModelNotReady("the server is shutting down")
        if not state.ready or state.engine is None:
            raise ModelNotReady(f"the model is not ready yet (status: {state.status})")
        if model != state.served_name:
            raise ModelNotFound(
                f"model {model!r} is not served here; this server serves {state.served_name!r}",
                param="model",
            )
        return state.engine

    def _prepare(
        engine: Engine,
        prompt_ids: list[int],
        req: CompletionRequest | ChatCompletionRequest,
        default_max: int,
        field_name: str,
    ) -> _Prepared:
        n = len(prompt_ids)
        if n == 0:
            raise InvalidInput(f"{field_name}: the prompt is empty", param=field_name)
        if settings.max_prompt_tokens is not None and n > settings.max_prompt_tokens:
            raise InvalidInput(
                f"{field_name}: the prompt has {n} tokens; this server's limit is "
                f"{settings.max_prompt_tokens} prompt tokens",
                param=field_name,
                code="prompt_too_long",
            )
        if n >= engine.context_len:
            raise InvalidInput(
                f"{field_name}: the prompt has {n} tokens; the model's context is "
                f"{engine.context_len} tokens, which leaves no room to generate",
                param=field_name,
                code="context_length_exceeded",
            )
        wanted = req.max_tokens if req.max_tokens is not None else default_max
        if wanted > settings.max_new_tokens:
            raise InvalidInput(
                f"max_tokens: {wanted} is above this server's limit of "
                f"{settings.max_new_tokens} new tokens",
                param="max_tokens",
            )
        params = SamplingParams(
            temperature=req.temperature,
            top_p=req.top_p,
            seed=req.seed,
            stop=req.stop_sequences(),
            ignore_eos=req.ignore_eos,
        )
        return _Prepared(
            prompt_ids=prompt_ids,
            params=params,
            max_new_tokens=min(wanted, engine.context_len - n),
        )

    def _check_length(chars: int, field_name: str) -> None:
        """Refuse, before tokenising, text too long to fit the prompt limit in any case."""
        limit = state.prompt_token_limit()
        if chars <= limit * state.max_token_chars:
            return
        if settings.max_prompt_tokens:
            why, code = f"this server's limit is {limit} prompt tokens", "prompt_too_long"
        else:
            why, code = f"the model's context is {limit} tokens", "context_length_exceeded"
        raise InvalidInput(
            f"{field_name}: {chars} characters are more than {limit} tokens can hold; {why}",
            param=field_name,
            code=code,
        )

    async def _off_loop(work: Callable[[], list[int]]) -> list[int]:
        return await asyncio.get_running_loop().run_in_executor(tokenizing, work)

    def _submit(engine: Engine, prep: _Prepared) -> RequestStream:
        stream = engine.submit(
            prep.prompt_ids, prep.params, prep.max_new_tokens, loop=asyncio.get_running_loop()
        )
        metrics.prompt_tokens.inc(len(prep.prompt_ids))
        return stream

    async def _timed_events(
        stream: RequestStream, started: float
    ) -> AsyncIterator[TokenEvent | FinishEvent]:
        """The stream's events, with TTFT / inter-token metrics; errors raise."""
        last: float | None = None
        async for event in stream.events():
            if isinstance(event, ErrorEvent):
                raise event.error
            if isinstance(event, TokenEvent):
                now = time.monotonic()
                if last is None:
                    metrics.ttft.observe(now - started)
                else:
                    metrics.itl.observe(now - last)
                last = now
                metrics.generation_tokens.inc()
            yield event

    async def _collect(
        request: Request, stream: RequestStream, started: float
    ) -> tuple[str, FinishEvent]:
        async def consume() -> tuple[str, FinishEvent]:
            parts: list[str] = []
            async for event in _timed_events(stream, started):
                if isinstance(event, TokenEvent):
                    parts.append(event.text)
                else:
                    return "".join(parts), event
            raise ModelNotReady("the request ended without a result")

        task = asyncio.ensure_future(consume())
        deadline = started + settings.request_timeout
        try:
            while True:
                left = deadline - time.monotonic()
                done, _ = await asyncio.wait({task}, timeout=max(0.0, min(0.5, left)))
                if done:
                    return task.result()
                if left <= 0:
                    raise RequestTimeout(
                        f"the request did not finish within {settings.request_timeout:g} s "
                        "(the server's --request-timeout) and was cancelled; stream it, or "
                        "ask for fewer tokens"
                    )
                if await request.is_disconnected():
                    stream.cancel()
                    task.cancel()
                    raise ModelNotReady("client disconnected")
        finally:
            if not task.done():
                stream.cancel()
                task.cancel()

    def _stream_response(
        stream: RequestStream,
        started: float,
        encode: Callable[[str | None, str | None], dict[str, Any]],
        usage_chunk: Callable[[Usage], dict[str, Any]] | None,
        first: dict[str, Any] | None = None,
    ) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            finished = False
            try:
                if first is not None:
                    yield _sse(first)
                async for event in _timed_events(stream, started):
                    if isinstance(event, TokenEvent):
                        if event.text:
                            yield _sse(encode(event.text, None))
                        continue
                    finished = True
                    yield _sse(encode(None, event.reason))
                    if usage_chunk is not None:
                        usage = Usage.of(event.prompt_tokens, event.completion_tokens)
                        yield _sse(usage_chunk(usage))
                yield _sse("[DONE]")
            except ServingError as exc:
                finished = True
                yield _sse(error_body(exc))
                yield _sse("[DONE]")
            finally:
                if not finished:  # client went away: leave the batch
                    stream.cancel()

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/healthz")
    async def healthz() -> Response:
        engine = state.engine
        if engine is not None and not engine.alive and state.status != "draining":
            error = repr(engine.crashed) if engine.crashed else "the engine thread is not running"
            body = {"status": "dead", "model": state.status, "error": error}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "alive", "model": state.status})

    @app.get("/readyz")
    async def readyz() -> Response:
        if state.ready:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": state.status, "error": state.error}, status_code=503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict[str, Any]:
        _authorize(request)
        if not state.served_name:
            raise ModelNotReady("the model is not loaded yet")
        return models_response(state.served_name, state.created)

    @app.post("/v1/completions", response_model=None)
    async def completions(req: CompletionRequest, request: Request) -> Response:
        started = time.monotonic()
        _authorize(request)
        engine = _check_serving(req.model)
        prompt = req.prompt_text()
        _check_length(len(prompt), "prompt")
        ids = await _off_loop(lambda: list(engine.tokenizer(prompt)["input_ids"]))
        prep = _prepare(engine, ids, req, default_max=16, field_name="prompt")
        rid, name = new_id("cmpl"), state.served_name
        stream = _submit(engine, prep)
        if req.stream:

            def encode(text: str | None, reason: str | None) -> dict[str, Any]:
                return completion_chunk(rid, name, text or "", reason)

            usage_fn = (
                (lambda u: completion_chunk(rid, name, "", None, u))
                if (req.include_usage())
                else None
            )
            return _stream_response(stream, started, encode, usage_fn)
        text, fin = await _collect(request, stream, started)
        usage = Usage.of(fin.prompt_tokens, fin.completion_tokens)
        return JSONResponse(completion_response(rid, name, text, fin.reason, usage))

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(req: ChatCompletionRequest, request: Request) -> Response:
        started = time.monotonic()
        _authorize(request)
        engine = _check_serving(req.model)
        tok = engine.tokenizer
        if not getattr(tok, "chat_template", None):
            raise InvalidInput(
                "this model has no chat template and the server has no default; use "
                "/v1/completions, or start the server with --chat-template",
                param="messages",
                code="chat_template_missing",
            )
        messages = req.message_dicts()
        _check_length(sum(len(m["content"]) for m in messages), "messages")

        def render() -> list[int]:
            try:
                rendered = tok.apply_chat_template(
                    messages, tokenize=False, add_generation_prompt=True
                )
            except Exception as exc:
                raise InvalidInput(
                    f"messages: the chat template rejected them: {exc}", param="messages"
                ) from exc
            return list(tok(rendered, add_special_tokens=False)["input_ids"])

        ids = await _off_loop(render)
        prep = _prepare(
            engine, ids, req, default_max=settings.max_new_tokens, field_name="messages"
        )
        rid, name = new_id("chatcmpl"), state.served_name
        stream = _submit(engine, prep)
        if req.stream:

            def encode(text: str | None, reason: str | None) -> dict[str, Any]:
                delta = {"content": text} if text is not None else {}
                return chat_chunk(rid, name, delta, reason)

            usage_fn = (
                (lambda u: chat_chunk(rid, name, {}, None, u)) if (req.include_usage()) else None
            )
            first = chat_chunk(rid, name, {"role": "assistant", "content": ""}, None)
            return _stream_response(stream, started, encode, usage_fn, first=first)
        text, fin = await _collect(request, stream, started)
        usage = Usage.of(fin.prompt_tokens, fin.completion_tokens)
        return JSONResponse(chat_response(rid, name, text, fin.reason, usage))

    @app.exception_handler(404)
    async def _not_found(request: Request, _: Exception) -> JSONResponse:
        err = InvalidInput(f"no route {request.method} {request.url.path}")
        return JSONResponse(error_body(err), status_code=404)

    app.add_middleware(_BodyLimit, state=state)  # type: ignore[arg-type]
    app.add_middleware(_MetricsMiddleware, state=state, metrics=metrics)  # type: ignore[arg-type]
    return app
