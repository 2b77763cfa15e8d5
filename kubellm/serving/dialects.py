"""Completion and chat: what differs between the two generation routes, and only that.

Both routes validate, tokenise off the event loop, submit to the engine and encode the
engine's events; they differ in five small ways: the request field errors name, how the
input becomes token ids (a prompt, or messages through the chat template), the default
``max_tokens`` (OpenAI's 16 for completions, the server's cap for chat), and the shape of
responses and stream chunks. Each ``Dialect`` answers those; ``routes`` does the rest
once for both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

from kubellm.serving.errors import InvalidInput
from kubellm.serving.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    Usage,
    chat_chunk,
    chat_response,
    completion_chunk,
    completion_response,
)

__all__ = ["ChatDialect", "CompletionDialect", "Dialect"]

R = TypeVar("R", CompletionRequest, ChatCompletionRequest)


class Dialect(ABC, Generic[R]):
    field: str  # the request field that errors about the input name
    id_prefix: str

    def default_max_tokens(self, server_cap: int) -> int:
        """``max_tokens`` when the request sends none."""
        return server_cap

    def check(self, tokenizer: Any) -> None:
        """Refuse requests this model can never serve in this dialect."""

    @abstractmethod
    def input_chars(self, req: R) -> int:
        """Characters of input text, to refuse what cannot fit before tokenising."""

    @abstractmethod
    def tokenize(self, tokenizer: Any, req: R) -> list[int]:
        """The prompt's token ids (runs on the tokenising pool, off the event loop)."""

    @abstractmethod
    def response(self, rid: str, model: str, text: str, reason: str, usage: Usage) -> Any:
        """The whole response of a non-streamed request."""

    @abstractmethod
    def chunk(self, rid: str, model: str, text: str | None, reason: str | None) -> Any:
        """One stream chunk: new text, or (with ``reason``) the end."""

    @abstractmethod
    def usage_chunk(self, rid: str, model: str, usage: Usage) -> Any:
        """The chunk carrying usage, when the request asked for it."""

    def first_chunk(self, rid: str, model: str) -> Any | None:
        """A chunk sent before any text, if the dialect has one."""
        return None


class CompletionDialect(Dialect[CompletionRequest]):
    field = "prompt"
    id_prefix = "cmpl"

    def default_max_tokens(self, server_cap: int) -> int:
        return 16  # OpenAI's default for completions

    def input_chars(self, req: CompletionRequest) -> int:
        return len(req.prompt_text())

    def tokenize(self, tokenizer: Any, req: CompletionRequest) -> list[int]:
        return list(tokenizer(req.prompt_text())["input_ids"])

    def response(
        self, rid: str, model: str, text: str, reason: str, usage: Usage
    ) -> dict[str, Any]:
        return completion_response(rid, model, text, reason, usage)

    def chunk(self, rid: str, model: str, text: str | None, reason: str | None) -> dict[str, Any]:
        return completion_chunk(rid, model, text or "", reason)

    def usage_chunk(self, rid: str, model: str, usage: Usage) -> dict[str, Any]:
        return completion_chunk(rid, model, "", None, usage)


class ChatDialect(Dialect[ChatCompletionRequest]):
    field = "messages"
    id_prefix = "chatcmpl"

    def check(self, tokenizer: Any) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise InvalidInput(
                "this model has no chat template and the server has no default; use "
                "/v1/completions, or start the server with --chat-template",
                param="messages",
                code="chat_template_missing",
            )

    def input_chars(self, req: ChatCompletionRequest) -> int:
        return sum(len(m["content"]) for m in req.message_dicts())

    def tokenize(self, tokenizer: Any, req: ChatCompletionRequest) -> list[int]:
        try:
            rendered = tokenizer.apply_chat_template(
                req.message_dicts(), tokenize=False, add_generation_prompt=True
            )
        except Exception as exc:
            raise InvalidInput(
                f"messages: the chat template rejected them: {exc}", param="messages"
            ) from exc
        return list(tokenizer(rendered, add_special_tokens=False)["input_ids"])

    def response(
        self, rid: str, model: str, text: str, reason: str, usage: Usage
    ) -> dict[str, Any]:
        return chat_response(rid, model, text, reason, usage)

    def chunk(self, rid: str, model: str, text: str | None, reason: str | None) -> dict[str, Any]:
        return chat_chunk(rid, model, {"content": text} if text is not None else {}, reason)

    def usage_chunk(self, rid: str, model: str, usage: Usage) -> dict[str, Any]:
        return chat_chunk(rid, model, {}, None, usage)

    def first_chunk(self, rid: str, model: str) -> dict[str, Any]:
        return chat_chunk(rid, model, {"role": "assistant", "content": ""}, None)
