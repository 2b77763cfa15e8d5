"""The OpenAI wire format: request validation and response shapes.

Requests are validated here, field by field, so that a bad request is refused with a 400
that names the field before it costs the engine anything. Fields that OpenAI defines but
this server does not implement (``n > 1``, logprobs of generated tokens, penalties) are
refused explicitly rather than silently ignored, because a client relying on them would get
wrong results; unknown extra fields are ignored, as OpenAI-compatible servers do, so that
clients sending vendor extensions keep working.

Prompt scoring is the one use of ``echo`` and ``logprobs`` served, as vLLM allows it for
perplexity: ``echo: true`` with ``max_tokens: 0`` (and ``logprobs: N``, N <= 5) returns the
prompt's own tokens with their log-probabilities in the legacy ``logprobs`` object
(``scoring_response``); ``echo`` with generation, or ``logprobs`` without ``echo``, is a 400.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = [
    "ChatCompletionRequest",
    "ChatMessage",
    "CompletionRequest",
    "StreamOptions",
    "Usage",
    "chat_chunk",
    "chat_response",
    "completion_chunk",
    "completion_response",
    "models_response",
    "new_id",
    "scoring_response",
]

MAX_STOP_SEQUENCES = 4
#: most alternatives per position a prompt-scoring request may ask for (OpenAI's limit)
MAX_LOGPROBS = 5
INT64 = 2**63


def _utf8(text: str, what: str) -> str:
    """JSON can carry lone surrogates (``"\\ud800"``), which no tokenizer can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} is not valid UTF-8 ({exc.reason})") from None
    return text


class StreamOptions(BaseModel):
    include_usage: bool = False


class _GenerationFields(BaseModel):
    """Fields shared by completions and chat completions."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: int = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=-INT64, lt=INT64)  # OpenAI: a 64-bit integer
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    user: str | None = None
    # vLLM's extension: generate exactly max_tokens, past end-of-sequence (benchmarks).
    ignore_eos: bool = False

    @field_validator("n")
    @classmethod
    def _only_one_choice(cls, v: int) -> int:
        if v != 1:
            raise ValueError("only n=1 is supported")
        return v

    @field_validator("presence_penalty", "frequency_penalty")
    @classmethod
    def _no_penalties(cls, v: float) -> float:
        if v != 0.0:
            raise ValueError("penalties are not supported; send 0 or omit the field")
        return v

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list):
            if len(v) > MAX_STOP_SEQUENCES:
                raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed")
            if any(not s for s in v):
                raise ValueError("stop sequences must not be empty")
        elif isinstance(v, str) and not v:
            raise ValueError("stop sequence must not be empty")
        for s in [v] if isinstance(v, str) else v or []:
            _utf8(s, "stop")
        return v

    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class CompletionRequest(_GenerationFields):
    """``POST /v1/completions``; OpenAI's default ``max_tokens`` of 16 applies.

    ``max_tokens: 0`` is a prompt-scoring request and needs ``echo: true`` (see the module
    docstring); fields are declared in the order their validators read each other."""

    max_tokens: int | None = Field(default=None, ge=0)
    prompt: str | list[str]
    echo: bool = Field(default=False, validate_default=True)
    logprobs: int | None = Field(default=None, ge=0, le=MAX_LOGPROBS)
    best_of: int | None = None
    suffix: str | None = None

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and len(v) != 1:
            raise ValueError("exactly one prompt per request is supported")
        _utf8(v if isinstance(v, str) else v[0], "the prompt")
        return v

    @field_validator("echo")
    @classmethod
    def _echo_scores_the_prompt(cls, v: bool, info: ValidationInfo) -> bool:
        scoring = info.data.get("max_tokens") == 0
        if v and not scoring:
            raise ValueError(
                "echo is supported only to score the prompt: send max_tokens 0 with it"
            )
        if not v and scoring:
            raise ValueError("max_tokens 0 (prompt scoring) needs echo: true")
        if v and info.data.get("stream"):
            raise ValueError("prompt scoring (echo with max_tokens 0) does not stream")
        return v

    @field_validator("logprobs")
    @classmethod
    def _logprobs_of_the_prompt(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is not None and not info.data.get("echo"):
            raise ValueError(
                "logprobs of generated tokens are not supported; send echo: true with "
                "max_tokens 0 to get the prompt's logprobs"
            )
        return v

    @field_validator("suffix")
    @classmethod
    def _unsupported(cls, v: Any) -> Any:
        if v is not None:
            raise ValueError("not supported by this server")
        return v

    @field_validator("best_of")
    @classmethod
    def _one_candidate(cls, v: int | None) -> int | None:
        if v is not None and v != 1:
            raise ValueError("only best_of=1 is supported")
        return v

    def prompt_text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]

    @property
    def scores_prompt(self) -> bool:
        """A prompt-scoring request: echo the prompt with its logprobs, generate nothing."""
        return self.echo and self.max_tokens == 0


class TextPart(BaseModel):
    type: Literal["text"]
    text: str

    @field_validator("text")
    @classmethod
    def _valid_text(cls, v: str) -> str:
        return _utf8(v, "the message")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    @field_validator("content")
    @classmethod
    def _valid_content(cls, v: str | list[TextPart] | None) -> str | list[TextPart] | None:
        return _utf8(v, "the message") if isinstance(v, str) else v

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class ChatCompletionRequest(_GenerationFields):
    """``POST /v1/chat/completions``; ``max_completion_tokens`` is the newer name."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = None

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, v: bool) -> bool:
        if v:
            raise ValueError("logprobs are not supported")
        return v

    @field_validator("top_logprobs")
    @classmethod
    def _no_top_logprobs(cls, v: int | None) -> int | None:
        if v is not None:
            raise ValueError("logprobs are not supported")
        return v

    @model_validator(mode="after")
    def _one_max(self) -> ChatCompletionRequest:
        if self.max_tokens is None and self.max_completion_tokens is not None:
            self.max_tokens = self.max_completion_tokens
        return self

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.text()} for m in self.messages]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def completion_response(
    rid: str, model: str, text: str, finish_reason: str, usage: Usage
) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage.model_dump(),
    }


def scoring_response(
    rid: str, model: str, text: str, logprobs: dict[str, Any] | None, usage: Usage
) -> dict[str, Any]:
    """A prompt-scoring answer: the prompt echoed, OpenAI's legacy ``logprobs`` object
    (``tokens``, ``token_logprobs`` whose first is null, ``top_logprobs``, ``text_offset``)
    when asked for, nothing generated."""
    return {
        "id": rid,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": "length"}],
        "usage": usage.model_dump(),
    }


def completion_chunk(
    rid: str, model: str, text: str, finish_reason: str | None, usage: Usage | None = None
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": rid,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        chunk["choices"] = []
        chunk["usage"] = usage.model_dump()
    return chunk


def chat_response(
    rid: str, model: str, text: str, finish_reason: str, usage: Usage
) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage.model_dump(),
    }


def chat_chunk(
    rid: str,
    model: str,
    delta: dict[str, str],
    finish_reason: str | None,
    usage: Usage | None = None,
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        chunk["choices"] = []
        chunk["usage"] = usage.model_dump()
    return chunk


def models_response(model: str, created: int) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": model, "object": "model", "created": created, "owned_by": "kubellm"}],
    }
