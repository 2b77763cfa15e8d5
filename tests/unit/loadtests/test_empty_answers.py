"""A 200 answer that generated no text is a failed request (issue 12 item 8)."""

from __future__ import annotations

from kubellm.loadtests.openai_wire import (
    StreamTally,
    empty_generation,
    finish_reason,
    model_stopped,
    response_text,
    response_tokens,
)


def test_generated_text_of_completions_and_chat_answers() -> None:
    assert response_text({"choices": [{"text": " hi"}, {"text": "!"}]}) == " hi!"
    assert response_text({"choices": [{"message": {"role": "assistant", "content": "ok"}}]}) == (
        "ok"
    )
    assert response_text({"choices": [{"text": ""}], "usage": {"completion_tokens": 0}}) == ""
    assert response_text({"choices": "nonsense"}) == "" and response_text([1]) == ""


def test_empty_answer_is_an_error_unless_zero_tokens_were_allowed() -> None:
    assert empty_generation(False, 16) == "HTTP 200 with no generated text (max_tokens=16)"
    assert empty_generation(True, 16) is None
    assert empty_generation(False, 0) is None


def test_a_stream_of_empty_chunks_generated_nothing() -> None:
    tally = StreamTally(start=0.0)
    for line in (
        b'data: {"choices": [{"text": ""}]}',
        b'data: {"choices": [], "usage": {"completion_tokens": 0}}',
        b"data: [DONE]",
    ):
        tally.feed(line, 0.1)
    assert tally.done and tally.content_chunks == 0
    assert empty_generation(tally.content_chunks > 0, 16) is not None


def test_an_answer_the_model_ended_at_once_is_not_an_error() -> None:
    """A model that samples its end-of-sequence token first answers "" legitimately: the
    server reports finish_reason "stop" and one completion token (the EOS)."""
    body = {
        "choices": [{"text": "", "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }
    stopped = model_stopped(finish_reason(body), response_tokens(body))
    assert empty_generation(bool(response_text(body)), 8, stopped) is None


def test_an_empty_answer_without_a_generated_token_is_still_an_error() -> None:
    for body in (
        {"choices": [{"text": "", "finish_reason": "stop"}], "usage": {"completion_tokens": 0}},
        {"choices": [{"text": "", "finish_reason": "stop"}]},
        {"choices": [{"text": "", "finish_reason": "length"}], "usage": {"completion_tokens": 8}},
    ):
        stopped = model_stopped(finish_reason(body), response_tokens(body))
        assert empty_generation(bool(response_text(body)), 8, stopped) is not None, body


def test_a_stream_the_model_ended_at_once_is_not_an_error() -> None:
    tally = StreamTally(start=0.0)
    tally.feed(b'data: {"choices": [{"text": "", "finish_reason": "stop"}]}\n', 0.1)
    tally.feed(b'data: {"choices": [], "usage": {"completion_tokens": 1}}\n', 0.1)
    tally.feed(b"data: [DONE]\n", 0.1)
    stopped = model_stopped(tally.finish_reason, tally.usage_tokens)
    assert empty_generation(tally.content_chunks > 0, 8, stopped) is None
