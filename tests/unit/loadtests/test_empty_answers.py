"""A 200 answer that generated no text is a failed request (issue 12 item 8)."""

from __future__ import annotations

from kubellm.loadtests.openai_wire import StreamTally, empty_generation, response_text


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
