"""Scoring a release that answers badly: every bad answer leaves the release unscored with
the reason (the gate then fails closed), never a number, never an exception."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kubellm.loadtests.evaluation import EvalItem
from kubellm.loadtests.quality import MAX_RESPONSE_BYTES, score_release

Answer = Callable[[dict], tuple[int, dict[str, str], bytes]]


@pytest.fixture
def release() -> Iterator[Callable[[Answer], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Answer) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                code, headers, data = answer(body)
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _json(obj: object) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(obj).encode()


def _scoring(values: object, text: object = "4") -> Answer:
    def answer(body: dict) -> tuple[int, dict[str, str], bytes]:
        if body.get("echo"):
            return _json({"choices": [{"text": "", "logprobs": {"token_logprobs": values}}]})
        return _json({"choices": [{"text": text}]})

    return answer


ITEMS = [EvalItem("2+2=", "4"), EvalItem("Hello there")]


def test_a_good_release_is_scored(release) -> None:
    url = release(_scoring([None, -1.0, -2.0]))
    scores = score_release(url, "m", ITEMS)
    assert scores.problem is None and scores.tokens == 4
    assert scores.perplexity == pytest.approx(math.exp(1.5))
    assert (scores.matched, scores.references) == (1, 1)


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (_scoring([None, 3.0]), "not a log-probability"),
        (_scoring([None, "NaN"]), "not a number"),
        (_scoring({"a": 1}), "not a list"),
        (_scoring([None, -1.0], text=["x"]), "not a string"),
        (lambda b: (200, {}, b"[" * 200_000), "nested too deep"),
        (lambda b: (200, {}, b"<html>"), "JSON"),
        (lambda b: (200, {}, b" " * (MAX_RESPONSE_BYTES + 1)), "larger than"),
        (lambda b: (302, {"Location": "http://127.0.0.1:9/steal"}, b""), "HTTP 302"),
        (lambda b: (400, {}, b'{"error": {"message": "echo is not supported"}}'), "HTTP 400"),
    ],
)
def test_bad_answers_leave_the_release_unscored(release, answer: Answer, why: str) -> None:
    scores = score_release(release(answer), "m", ITEMS, timeout_s=10)
    assert scores.perplexity is None and scores.problem is not None
    assert why in scores.problem, scores.problem


def test_an_unreachable_release_is_unscored() -> None:
    scores = score_release("http://127.0.0.1:9", "m", ITEMS, timeout_s=2)
    assert scores.perplexity is None and "evaluation prompt 1" in (scores.problem or "")
