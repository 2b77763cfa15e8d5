"""Timestamps are written and read as Kubernetes does, whatever the caller's clock zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from kubellm.api.timestamps import format_time, now_rfc3339, parse_time, seconds_since

MOMENT = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)


def test_written_to_the_second_in_utc_with_z() -> None:
    assert format_time(MOMENT) == "2026-03-04T05:06:07Z"


def test_micro_time_keeps_six_fraction_digits() -> None:
    assert format_time(MOMENT, micro=True) == "2026-03-04T05:06:07.891011Z"


def test_other_zones_are_converted_to_utc() -> None:
    tokyo = MOMENT.astimezone(timezone(timedelta(hours=9)))
    assert format_time(tokyo) == "2026-03-04T05:06:07Z"


def test_naive_datetimes_are_taken_as_utc_not_local() -> None:
    assert format_time(MOMENT.replace(tzinfo=None)) == "2026-03-04T05:06:07Z"


def test_epoch_seconds_are_accepted() -> None:
    assert format_time(MOMENT.timestamp()) == "2026-03-04T05:06:07Z"


def test_now_is_written_in_the_same_format() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    written = parse_time(now_rfc3339())
    assert written is not None and before <= written <= datetime.now(UTC)
    assert now_rfc3339().endswith("Z") and len(now_rfc3339()) == len("2026-03-04T05:06:07Z")


def test_round_trip() -> None:
    assert parse_time(format_time(MOMENT)) == MOMENT.replace(microsecond=0)
    assert parse_time(format_time(MOMENT, micro=True)) == MOMENT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-04T05:06:07Z", datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)),
        ("2026-03-04T14:06:07+09:00", datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)),
        ("2026-03-04T05:06:07.5Z", datetime(2026, 3, 4, 5, 6, 7, 500000, tzinfo=UTC)),
        ("2026-03-04T05:06:07", datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)),
    ],
)
def test_parsed_as_an_aware_utc_datetime(text: str, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == expected and parsed is not None and parsed.tzinfo is UTC


@pytest.mark.parametrize("text", [None, "", "yesterday", "2026-13-01T00:00:00Z", 1700000000])
def test_unreadable_timestamps_parse_to_none(text: object) -> None:
    assert parse_time(text) is None


def test_seconds_since() -> None:
    now = MOMENT + timedelta(seconds=90)
    assert seconds_since(format_time(MOMENT), now) == pytest.approx(90.891011)
    assert seconds_since(format_time(MOMENT), now.replace(tzinfo=None)) == pytest.approx(90.891011)


@pytest.mark.parametrize("text", [None, "", "garbage"])
def test_seconds_since_nothing_readable_is_infinite(text: object) -> None:
    assert seconds_since(text, MOMENT) == float("inf")
