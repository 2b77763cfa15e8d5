"""Prompt files and the reading of OpenAI responses and event streams."""

from __future__ import annotations

import json

import pytest

from kubellm.loadtests.openai_wire import (
    StreamTally,
    chat_body,
    completion_body,
    response_tokens,
)
from kubellm.loadtests.prompts import BUILTIN_PROMPTS, load_prompts, parse_prompts
from kubellm.loadtests.slo import InputError


def test_plain_prompt_file_gives_one_prompt_per_non_blank_line():
    assert parse_prompts("first\n\n  second  \n") == ["first", "second"]


def test_jsonl_prompts_use_prompt_then_text_field():
    text = '{"prompt": "p1"}\n{"text": "t2"}\n{"prompt": "p3", "text": "ignored"}\n'
    assert parse_prompts(text) == ["p1", "t2", "p3"]


def test_example_prompt_files_load(repo_root):
    assert len(load_prompts(repo_root / "examples/data/prompts.txt")) == 16
    assert load_prompts(repo_root / "examples/data/support-chat.jsonl")[0].startswith("User:")


def test_no_file_means_the_builtin_set():
    assert load_prompts(None) == list(BUILTIN_PROMPTS)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "no prompts found"),
        ("\n  \n", "no prompts found"),
        ('ok\n{"prompt": \n', "p.txt:2: not valid JSON"),
        ('{"question": "x"}', "p.txt:1: a JSON line needs"),
        ('{"prompt": 3}', "p.txt:1: a JSON line needs"),
    ],
)
def test_bad_prompt_files_name_file_and_line(text, fragment):
    with pytest.raises(InputError) as info:
        parse_prompts(text, source="p.txt")
    assert fragment in str(info.value)


def test_unreadable_prompt_file_is_named(tmp_path):
    with pytest.raises(InputError) as info:
        load_prompts(tmp_path / "nope.txt")
    assert "--prompts" in str(info.value) and "nope.txt" in str(info.value)


def test_request_bodies_ask_for_usage_only_when_streaming():
    assert "stream_options" not in completion_body("hi", "m", 8, False)
    streamed = chat_body("hi", "m", 8, True)
    assert streamed["messages"] == [{"role": "user", "content": "hi"}]
    assert streamed["stream_options"] == {"include_usage": True}
    assert streamed["model"] == "m" and streamed["max_tokens"] == 8


def test_response_tokens_come_from_usage_or_are_unknown():
    assert response_tokens({"usage": {"completion_tokens": 7}}) == 7
    assert response_tokens({"choices": []}) is None
    assert response_tokens([1, 2]) is None


def sse(obj) -> bytes:
    return f"data: {json.dumps(obj)}\n".encode()


def chat_chunk(text):
    return {"choices": [{"delta": {"content": text}}]}


def test_stream_tally_measures_ttft_gaps_and_usage_tokens():
    tally = StreamTally(start=10.0)
    tally.feed(sse({"choices": [{"delta": {"role": "assistant", "content": ""}}]}), 10.05)
    tally.feed(b"\n", 10.05)
    tally.feed(sse(chat_chunk("Hel")), 10.1)
    tally.feed(b": keep-alive comment\n", 10.12)
    tally.feed(sse(chat_chunk("lo")), 10.13)
    tally.feed(sse(chat_chunk("!")), 10.15)
    tally.feed(sse({"choices": [], "usage": {"completion_tokens": 4}}), 10.16)
    tally.feed(b"data: [DONE]\n", 10.16)
    assert tally.done and tally.error is None
    assert tally.ttft_ms == pytest.approx(100.0)  # the empty role chunk is not a token
    assert tally.inter_token_ms == pytest.approx([30.0, 20.0])
    assert tally.tokens == 4  # usage wins over the 3 content chunks


def test_stream_tally_counts_chunks_when_the_server_sends_no_usage():
    tally = StreamTally(start=0.0)
    for i, piece in enumerate(["a", "b", "c"]):
        tally.feed(sse({"choices": [{"text": piece}]}), 0.1 * (i + 1))
    assert tally.tokens == 3 and not tally.done


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        (b"data: {not json\n", "invalid JSON"),
        (b'data: {"error": {"message": "overloaded"}}\n', "overloaded"),
        (b"data: [1]\n", "unexpected stream event"),
    ],
)
def test_stream_tally_reports_broken_streams(line, fragment):
    tally = StreamTally(start=0.0)
    tally.feed(line, 0.1)
    assert fragment in (tally.error or "")
