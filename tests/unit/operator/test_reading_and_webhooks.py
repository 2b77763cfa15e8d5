"""Pure pieces at the operator's edges: log progress, termination messages, webhook checks,
merge-patch diffs."""

from __future__ import annotations

import json

import pytest

from kubellm.operator.executing import merge_patch_diff
from kubellm.operator.reading import _terminated, parse_progress
from kubellm.operator.webhooks import WebhookRejected, parse_event, sign, verify


def test_progress_is_read_from_the_last_training_log_line() -> None:
    log = (
        "loading data\n"
        "step 10/150 (6%) loss 5.1234 lr 1.00e-03 tokens/s 30,000 eta 0:00:20\n"
        "step 40/150 (26%) loss 3.2500 lr 2.99e-03 tokens/s 31,000 eta 0:00:12\n"
    )
    progress = parse_progress(log)
    assert progress is not None
    assert (progress.step, progress.total, progress.loss) == (40, 150, 3.25)
    assert parse_progress("nothing yet") is None


def test_termination_message_falls_back_to_the_previous_attempt() -> None:
    pod = {
        "status": {
            "containerStatuses": [
                {
                    "state": {"terminated": {"exitCode": 137, "message": ""}},
                    "lastState": {
                        "terminated": {"exitCode": 1, "message": '{"error": "CUDA OOM"}'}
                    },
                }
            ]
        }
    }
    term = _terminated(pod)
    assert term is not None
    assert json.loads(term["message"]) == {"error": "CUDA OOM"}
    assert term["exitCode"] == 137


def _headers(secret: str, body: str, ts: str, delivery: str = "d1") -> dict[str, str]:
    return {
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": ts,
        "X-MLflow-Signature": sign(secret, delivery, ts, body),
    }


BODY = json.dumps(
    {
        "entity": "model_version_alias",
        "action": "created",
        "data": {"name": "bot", "alias": "candidate", "version": "4"},
    }
)


def test_signed_fresh_delivery_is_accepted_and_parsed() -> None:
    verify("s", _headers("s", BODY, "1000"), BODY, now=1010)
    event = parse_event(BODY)
    assert (event.model, event.alias, event.version) == ("bot", "candidate", "4")


@pytest.mark.parametrize(
    ("headers", "now"),
    [
        ({}, 1000),  # unsigned
        (_headers("wrong", BODY, "1000"), 1000),  # forged
        (_headers("s", BODY, "1000"), 1000 + 3600),  # replayed an hour later
        (_headers("s", BODY + " ", "1000"), 1000),  # body changed after signing
    ],
    ids=["unsigned", "forged", "stale", "tampered"],
)
def test_bad_deliveries_are_rejected(headers: dict[str, str], now: float) -> None:
    with pytest.raises(WebhookRejected):
        verify("s", headers, BODY, now=now)


def test_non_registry_payload_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not an MLflow registry event"):
        parse_event('{"hello": 1}')


def test_merge_patch_diff_removes_vanished_keys_with_null() -> None:
    old = {"phase": "Training", "training": {"step": 3, "job": "j"}, "candidate": {"v": "1"}}
    new = {"phase": "Ready", "training": {"job": "j"}}
    assert merge_patch_diff(old, new) == {
        "phase": "Ready",
        "training": {"step": None},
        "candidate": None,
    }
