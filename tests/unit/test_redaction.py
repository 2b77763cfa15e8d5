"""URI userinfo never survives into text that users, logs or children see."""

from __future__ import annotations

import json

import pytest

from kubellm.redaction import has_userinfo, redact, redact_tree, strip_userinfo
from kubellm.termination import fit_json


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "registry unreachable: API request to http://alice:hunter2@10.0.0.5:5000/api/2.0 "
            "failed",
            "registry unreachable: API request to http://***@10.0.0.5:5000/api/2.0 failed",
        ),
        (
            "https://tok@host/x and s3://key:sec@bucket/p",
            "https://***@host/x and s3://***@bucket/p",
        ),
        ("http://a:p@ss@host:1/", "http://***@host:1/"),  # an unencoded @ in the password
        ("'http://u:p@h'", "'http://***@h'"),
        ("http://host/path?mail=a@b.c", "http://host/path?mail=a@b.c"),  # no userinfo
        ("write to ops@example.com", "write to ops@example.com"),
        ("no uri here", "no uri here"),
    ],
)
def test_userinfo_is_replaced(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_strip_userinfo_keeps_a_usable_uri() -> None:
    assert strip_userinfo("https://u:p@mlflow:5000/base?x=1") == "https://mlflow:5000/base?x=1"
    assert strip_userinfo("http://mlflow:5000") == "http://mlflow:5000"
    assert has_userinfo("http://u@h") and not has_userinfo("http://h/a@b")


def test_redact_tree_reaches_nested_strings_only() -> None:
    value = {"error": "http://u:p@h", "reasons": ["x", {"y": "https://t@h"}], "n": 3}
    assert redact_tree(value) == {
        "error": "http://***@h",
        "reasons": ["x", {"y": "https://***@h"}],
        "n": 3,
    }


def test_termination_messages_are_redacted() -> None:
    text = fit_json({"status": "failed", "error": "GET https://bob:pw@data.example/x: 403"})
    assert json.loads(text)["error"] == "GET https://***@data.example/x: 403"
