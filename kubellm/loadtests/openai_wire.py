"""What the load test sends to and reads from an OpenAI-compatible server.

Request bodies for completions and chat completions, and the reading of a server-sent
event stream: when the first token arrived, the gaps between tokens, how many tokens were
generated (from ``usage`` when the server reports it, else one per content chunk) and
whether the stream ended properly with ``data: [DONE]``. An answer without any generated
text is a failed request unless it was allowed to generate nothing. It is kept free of Locust and of
any clock (times are passed in), so that it is tested in a plain process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

__all__ = [
    "CHAT_PATH",
    "COMPLETIONS_PATH",
    "StreamTally",
    "chat_body",
    "completion_body",
    "empty_generation",
    "finish_reason",
    "model_stopped",
    "response_text",
    "response_tokens",
]

COMPLETIONS_PATH = "/v1/completions"
CHAT_PATH = "/v1/chat/completions"


def completion_body(prompt: str, model: str, max_tokens: int, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def chat_body(prompt: str, model: str, max_tokens: int, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def response_tokens(body: Any) -> int | None:
    """Generated tokens reported by a (non-streamed) response, or None if it does not say."""
    if not isinstance(body, dict):
        return None
    usage = body.get("usage")
    if isinstance(usage, dict):
        value = usage.get("completion_tokens")
        if isinstance(value, int) and value >= 0:
            return value
    return None


def response_text(body: Any) -> str:
    """The generated text of a (non-streamed) completion or chat completion."""
    if not isinstance(body, dict):
        return ""
    text = ""
    for choice in body.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        piece = choice.get("text")
        if piece is None:
            message = choice.get("message")
            piece = message.get("content") if isinstance(message, dict) else None
        if isinstance(piece, str):
            text += piece
    return text


def model_stopped(finish_reason: str | None, completion_tokens: int | None) -> bool:
    """The model itself ended the answer: it generated a token (its end-of-sequence token)
    and the server says it stopped there. Empty text is then the model's answer."""
    return finish_reason == "stop" and (completion_tokens or 0) >= 1


def finish_reason(body: Any) -> str | None:
    """The first choice's finish_reason, if the body has one."""
    if not isinstance(body, dict):
        return None
    for choice in body.get("choices") or ():
        if isinstance(choice, dict) and isinstance(choice.get("finish_reason"), str):
            return str(choice["finish_reason"])
    return None


def empty_generation(generated_text: bool, max_tokens: int, stopped: bool = False) -> str | None:
    """Why an HTTP 200 answer is still a failure: it generated no text although the request
    asked for tokens, and the model did not end it (`stopped`: see `model_stopped`). A server
    that answers every request instantly with nothing would otherwise pass any latency
    objective. None when the answer is acceptable."""
    if generated_text or max_tokens == 0 or stopped:
        return None
    return f"HTTP 200 with no generated text (max_tokens={max_tokens})"


def _chunk_text(event: dict[str, Any]) -> str:
    """The generated text carried by one stream chunk (completion or chat delta)."""
    text = ""
    for choice in event.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        piece = choice.get("text")
        if piece is None:
            delta = choice.get("delta")
            piece = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(piece, str):
            text += piece
    return text


@dataclass
class StreamTally:
    """Reads an SSE stream line by line and keeps what the load test measures.

    ``start`` is the time the request was sent; ``feed`` gets each line with its arrival
    time (same clock). Times are seconds; the derived latencies are milliseconds.
    """

    start: float
    first_token_at: float | None = None
    token_times: list[float] = field(default_factory=list)
    content_chunks: int = 0
    usage_tokens: int | None = None
    finish_reason: str | None = None
    done: bool = False
    error: str | None = None
    bytes_read: int = 0

    def feed(self, line: bytes, now: float) -> None:
        self.bytes_read += len(line)
        text = line.decode("utf-8", errors="replace").strip()
        if not text or text.startswith(":") or not text.startswith("data:"):
            return  # blank separators, comments, and event:/id: fields carry no tokens
        payload = text[len("data:") :].strip()
        if payload == "[DONE]":
            self.done = True
            return
        try:
            event = json.loads(payload)
        except json.JSONDecodeError:
            self.error = f"invalid JSON in stream: {payload[:80]!r}"
            return
        if not isinstance(event, dict):
            self.error = f"unexpected stream event: {payload[:80]!r}"
            return
        if "error" in event:
            err = event["error"]
            message = err.get("message") if isinstance(err, dict) else err
            self.error = f"error event in stream: {str(message)[:120]}"
            return
        tokens = response_tokens(event)
        if tokens is not None:
            self.usage_tokens = tokens
        self.finish_reason = finish_reason(event) or self.finish_reason
        if _chunk_text(event):
            self.content_chunks += 1
            if self.first_token_at is None:
                self.first_token_at = now
            self.token_times.append(now)

    @property
    def ttft_ms(self) -> float | None:
        if self.first_token_at is None:
            return None
        return (self.first_token_at - self.start) * 1000.0

    @property
    def inter_token_ms(self) -> list[float]:
        """Gaps between successive content chunks, in milliseconds."""
        times = self.token_times
        return [(b - a) * 1000.0 for a, b in pairwise(times)]

    @property
    def tokens(self) -> int:
        """Generated tokens: the server's ``usage`` when it sent one, else content chunks."""
        return self.usage_tokens if self.usage_tokens is not None else self.content_chunks
