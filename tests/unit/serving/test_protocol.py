"""Request validation names the bad field; unsupported options are refused, not ignored."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kubellm.serving.errors import InvalidInput, Overloaded, error_body, headers_for
from kubellm.serving.protocol import ChatCompletionRequest, CompletionRequest


def _field_of(exc: ValidationError) -> str:
    return ".".join(str(p) for p in exc.errors()[0]["loc"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "x"}, "model"),
        ({"model": "m"}, "prompt"),
        ({"model": "m", "prompt": "x", "temperature": -1}, "temperature"),
        ({"model": "m", "prompt": "x", "top_p": 0}, "top_p"),
        ({"model": "m", "prompt": "x", "max_tokens": -1}, "max_tokens"),
        ({"model": "m", "prompt": "x", "max_tokens": 0}, "echo"),
        ({"model": "m", "prompt": "x", "n": 2}, "n"),
        ({"model": "m", "prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": "m", "prompt": ["a", "b"]}, "prompt"),
        ({"model": "m", "prompt": "x", "echo": True}, "echo"),
        ({"model": "m", "prompt": "x", "echo": True, "max_tokens": 4}, "echo"),
        ({"model": "m", "prompt": "x", "logprobs": 1}, "logprobs"),
        ({"model": "m", "prompt": "x", "logprobs": 1, "max_tokens": 4}, "logprobs"),
        ({"model": "m", "prompt": "x", "echo": True, "max_tokens": 0, "logprobs": 6}, "logprobs"),
        ({"model": "m", "prompt": "x", "echo": True, "max_tokens": 0, "logprobs": -1}, "logprobs"),
        ({"model": "m", "prompt": "x", "echo": True, "max_tokens": 0, "stream": True}, "echo"),
        ({"model": "m", "prompt": "x", "presence_penalty": 1.0}, "presence_penalty"),
    ],
)
def test_invalid_completion_fields_are_named(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        CompletionRequest.model_validate(body)
    assert _field_of(info.value).startswith(field)


def test_echo_with_max_tokens_0_is_a_prompt_scoring_request() -> None:
    req = CompletionRequest.model_validate(
        {"model": "m", "prompt": "x", "echo": True, "max_tokens": 0, "logprobs": 5}
    )
    assert req.scores_prompt and req.logprobs == 5
    plain = CompletionRequest.model_validate({"model": "m", "prompt": "x", "max_tokens": 3})
    assert not plain.scores_prompt


def test_chat_still_refuses_logprobs_and_max_tokens_0() -> None:
    for extra in ({"logprobs": True}, {"top_logprobs": 2}, {"max_tokens": 0}):
        with pytest.raises(ValidationError):
            ChatCompletionRequest.model_validate(
                {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}
            )


def test_chat_needs_at_least_one_message_with_a_known_role() -> None:
    with pytest.raises(ValidationError) as info:
        ChatCompletionRequest.model_validate({"model": "m", "messages": []})
    assert _field_of(info.value) == "messages"
    with pytest.raises(ValidationError) as info:
        ChatCompletionRequest.model_validate(
            {"model": "m", "messages": [{"role": "robot", "content": "x"}]}
        )
    assert _field_of(info.value).startswith("messages.0.role")


def test_max_completion_tokens_is_an_alias_of_max_tokens() -> None:
    req = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 7}
    )
    assert req.max_tokens == 7


def test_content_parts_are_joined_as_text() -> None:
    req = ChatCompletionRequest.model_validate(
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                }
            ],
        }
    )
    assert req.message_dicts() == [{"role": "user", "content": "ab"}]


def test_unknown_fields_are_ignored_for_compatibility() -> None:
    req = CompletionRequest.model_validate({"model": "m", "prompt": "x", "vendor_extra": 1})
    assert req.prompt_text() == "x" and req.stop_sequences() == ()


def test_stop_accepts_a_string_or_a_list() -> None:
    assert CompletionRequest.model_validate(
        {"model": "m", "prompt": "x", "stop": "\n"}
    ).stop_sequences() == ("\n",)


def test_error_bodies_are_openai_shaped() -> None:
    body = error_body(InvalidInput("bad", param="prompt"))
    assert body == {
        "error": {
            "message": "bad",
            "type": "invalid_request_error",
            "param": "prompt",
            "code": None,
        }
    }


def test_overload_carries_retry_after() -> None:
    exc = Overloaded("full", retry_after=2)
    assert exc.status_code == 429 and headers_for(exc) == {"Retry-After": "2"}
