"""The routes: health, readiness, metrics, models, and the two generation routes.

Routes are thin, KServe-style: authorise, validate (``protocol``), check limits, hand
the request to the engine, encode its events as JSON or server-sent events. Completion
and chat share one path; what differs between them is a ``Dialect``. Every failure is
raised as a ``ServingError``, which the app turns into a response in one place.

Nothing a client sends can stall the others: text that cannot fit the prompt limit is
refused before tokenising, tokenising and chat templating run on a small thread pool off
the event loop, and non-streamed requests end after ``--request-timeout`` (504).

``max_tokens`` above ``--max-new-tokens`` is refused with a 400 that states the limit
(a client asking for more than it can get should know); a ``max_tokens`` that merely does
not fit in the model's context after the prompt is clamped to what fits, and the
response then ends with ``finish_reason: "length"``. Without ``max_tokens``, completions
get OpenAI's default of 16 tokens and chat completions ``--max-new-tokens``.

A prompt-scoring completion (``echo`` with ``max_tokens: 0``) takes the same checks up to
the prompt limit, then one forward pass in ``scoring`` instead of the engine.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kubellm.serving.dialects import ChatDialect, CompletionDialect, Dialect, R
from kubellm.serving.errors import (
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    RequestTimeout,
    ServingError,
    Unauthorized,
    error_body,
)
from kubellm.serving.lifecycle import ServerState
from kubellm.serving.metrics import Metrics
from kubellm.serving.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    Usage,
    models_response,
    new_id,
    scoring_response,
)
from kubellm.serving.scoring import Scorer
from kubellm.serving.streams import (
    ErrorEvent,
    FinishEvent,
    RequestStream,
    SamplingParams,
    TokenEvent,
)

if TYPE_CHECKING:
    from kubellm.serving.engine import Engine

__all__ = ["Routes"]

COMPLETION = CompletionDialect()
CHAT = ChatDialect()


def _sse(payload: Any) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


@dataclass
class _Prepared:
    prompt_ids: list[int]
    params: SamplingParams
    max_new_tokens: int


class Routes:
    """The server's routes over one ``ServerState``; ``register`` adds them to an app."""

    def __init__(self, state: ServerState, metrics: Metrics, tokenizing: Executor) -> None:
        self.state = state
        self.settings = state.settings
        self.metrics = metrics
        self.tokenizing = tokenizing  # tokenising and chat templating run here
        self.scorer = Scorer()  # prompt scoring (echo + max_tokens 0), one at a time

    def register(self, app: FastAPI) -> None:
        app.add_api_route("/healthz", self.healthz, methods=["GET"])
        app.add_api_route("/readyz", self.readyz, methods=["GET"])
        app.add_api_route("/metrics", self.prometheus, methods=["GET"])
        app.add_api_route("/v1/models", self.list_models, methods=["GET"])
        app.add_api_route(
            "/v1/completions", self.completions, methods=["POST"], response_model=None
        )
        app.add_api_route(
            "/v1/chat/completions", self.chat_completions, methods=["POST"], response_model=None
        )

    # ------------------------------------------------------------------------ routes
    async def healthz(self) -> Response:
        state, engine = self.state, self.state.engine
        if engine is not None and not engine.alive and state.status != "draining":
            error = repr(engine.crashed) if engine.crashed else "the engine thread is not running"
            body = {"status": "dead", "model": state.status, "error": error}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "alive", "model": state.status})

    async def readyz(self) -> Response:
        if self.state.ready:
            return JSONResponse({"status": "ready"})
        body = {"status": self.state.status, "error": self.state.error}
        return JSONResponse(body, status_code=503)

    async def prometheus(self) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def list_models(self, request: Request) -> dict[str, Any]:
        self._authorize(request)
        if not self.state.served_name:
            raise ModelNotReady("the model is not loaded yet")
        return models_response(self.state.served_name, self.state.created)

    async def completions(self, req: CompletionRequest, request: Request) -> Response:
        if req.scores_prompt:
            return await self._score(req, request)
        return await self._generate(req, request, COMPLETION)

    async def chat_completions(self, req: ChatCompletionRequest, request: Request) -> Response:
        return await self._generate(req, request, CHAT)

    # -------------------------------------------------------------- the shared path
    async def _generate(self, req: R, request: Request, dialect: Dialect[R]) -> Response:
        started = time.monotonic()
        self._authorize(request)
        engine = self._check_serving(req.model)
        tokenizer = engine.tokenizer
        dialect.check(tokenizer)
        self._check_length(dialect.input_chars(req), dialect.field)
        loop = asyncio.get_running_loop()
        ids = await loop.run_in_executor(self.tokenizing, dialect.tokenize, tokenizer, req)
        default_max = dialect.default_max_tokens(self.settings.max_new_tokens)
        prep = self._prepare(engine, ids, req, default_max, dialect.field)
        rid, name = new_id(dialect.id_prefix), self.state.served_name
        stream = engine.submit(prep.prompt_ids, prep.params, prep.max_new_tokens, loop=loop)
        self.metrics.prompt_tokens.inc(len(prep.prompt_ids))
        if req.stream:
            return self._stream_response(stream, started, dialect, rid, req.include_usage())
        text, fin = await self._collect(request, stream, started)
        usage = Usage.of(fin.prompt_tokens, fin.completion_tokens)
        return JSONResponse(dialect.response(rid, name, text, fin.reason, usage))

    async def _score(self, req: CompletionRequest, request: Request) -> Response:
        """The prompt echoed with its tokens' logprobs (``scoring``); nothing generated."""
        self._authorize(request)
        engine = self._check_serving(req.model)
        tokenizer = engine.tokenizer
        self._check_length(COMPLETION.input_chars(req), COMPLETION.field)
        loop = asyncio.get_running_loop()
        ids = await loop.run_in_executor(self.tokenizing, COMPLETION.tokenize, tokenizer, req)
        self._check_prompt(engine, ids, COMPLETION.field)
        self.metrics.prompt_tokens.inc(len(ids))
        logprobs = None
        if req.logprobs is not None:
            scores = await self.scorer.score(
                engine.model, tokenizer, ids, req.logprobs, self.settings.request_timeout
            )
            logprobs = scores.to_dict()
        usage = Usage.of(len(ids), 0)
        body = scoring_response(
            new_id(COMPLETION.id_prefix), self.state.served_name, req.prompt_text(), logprobs, usage
        )
        return JSONResponse(body)

    def _authorize(self, request: Request) -> None:
        key = self.settings.api_key
        if not key:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), key.encode()
        ):
            raise Unauthorized("missing or invalid API key (send Authorization: Bearer KEY)")

    def _check_serving(self, model: str) -> Engine:
        state = self.state
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

    def _check_length(self, chars: int, field_name: str) -> None:
        """Refuse, before tokenising, text too long to fit the prompt limit in any case."""
        limit = self.state.prompt_token_limit()
        if chars <= limit * self.state.max_token_chars:
            return
        if self.settings.max_prompt_tokens:
            why, code = f"this server's limit is {limit} prompt tokens", "prompt_too_long"
        else:
            why, code = f"the model's context is {limit} tokens", "context_length_exceeded"
        raise InvalidInput(
            f"{field_name}: {chars} characters are more than {limit} tokens can hold; {why}",
            param=field_name,
            code=code,
        )

    def _check_prompt(self, engine: Engine, prompt_ids: list[int], field_name: str) -> None:
        """The prompt's tokens within the server's prompt limit and the model's context."""
        settings = self.settings
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

    def _prepare(
        self,
        engine: Engine,
        prompt_ids: list[int],
        req: CompletionRequest | ChatCompletionRequest,
        default_max: int,
        field_name: str,
    ) -> _Prepared:
        settings = self.settings
        n = len(prompt_ids)
        self._check_prompt(engine, prompt_ids, field_name)
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
        return _Prepared(prompt_ids, params, min(wanted, engine.context_len - n))

    # ---------------------------------------------------------------------- responses
    async def _timed_events(
        self, stream: RequestStream, started: float
    ) -> AsyncIterator[TokenEvent | FinishEvent]:
        """The stream's events, with TTFT / inter-token metrics; errors raise."""
        last: float | None = None
        async for event in stream.events():
            if isinstance(event, ErrorEvent):
                raise event.error
            if isinstance(event, TokenEvent):
                now = time.monotonic()
                if last is None:
                    self.metrics.ttft.observe(now - started)
                else:
                    self.metrics.itl.observe(now - last)
                last = now
                self.metrics.generation_tokens.inc()
            yield event

    async def _collect(
        self, request: Request, stream: RequestStream, started: float
    ) -> tuple[str, FinishEvent]:
        async def consume() -> tuple[str, FinishEvent]:
            parts: list[str] = []
            async for event in self._timed_events(stream, started):
                if isinstance(event, TokenEvent):
                    parts.append(event.text)
                else:
                    return "".join(parts), event
            raise ModelNotReady("the request ended without a result")

        timeout = self.settings.request_timeout
        task = asyncio.ensure_future(consume())
        deadline = started + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                done, _ = await asyncio.wait({task}, timeout=max(0.0, min(0.5, left)))
                if done:
                    return task.result()
                if left <= 0:
                    raise RequestTimeout(
                        f"the request did not finish within {timeout:g} s "
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
        self,
        stream: RequestStream,
        started: float,
        dialect: Dialect[Any],
        rid: str,
        include_usage: bool,
    ) -> StreamingResponse:
        name = self.state.served_name

        async def body() -> AsyncIterator[bytes]:
            finished = False
            try:
                first = dialect.first_chunk(rid, name)
                if first is not None:
                    yield _sse(first)
                async for event in self._timed_events(stream, started):
                    if isinstance(event, TokenEvent):
                        if event.text:
                            yield _sse(dialect.chunk(rid, name, event.text, None))
                        continue
                    finished = True
                    yield _sse(dialect.chunk(rid, name, None, event.reason))
                    if include_usage:
                        usage = Usage.of(event.prompt_tokens, event.completion_tokens)
                        yield _sse(dialect.usage_chunk(rid, name, usage))
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
