"""Timestamps as Kubernetes writes them: RFC 3339 in UTC, with a ``Z``.

Every timestamp kubellm writes into an object or a result (condition transitions, rollout
history, Events, the gateway's demand report, load-test reports) goes through
`format_time`, and every one it reads goes through `parse_time`, so the format is spelled
out once. Kubernetes' ``Time`` is to the second; its ``MicroTime`` (an Event's
``eventTime``, a Lease's renew time) carries six fraction digits (``micro=True``).

Naive datetimes are taken as UTC, never as the host's local time: a pod's clock zone must
not change what the operator writes.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["RFC3339", "RFC3339_MICRO", "format_time", "now_rfc3339", "parse_time", "seconds_since"]

#: Kubernetes ``Time``: seconds, UTC
RFC3339 = "%Y-%m-%dT%H:%M:%SZ"
#: Kubernetes ``MicroTime``: microseconds, UTC
RFC3339_MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"


def _utc(moment: datetime | float) -> datetime:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    return datetime.fromtimestamp(moment, UTC)


def format_time(moment: datetime | float, *, micro: bool = False) -> str:
    """`moment` (a datetime, or seconds since the epoch) as Kubernetes writes it."""
    return _utc(moment).strftime(RFC3339_MICRO if micro else RFC3339)


def now_rfc3339(*, micro: bool = False) -> str:
    """The current time as Kubernetes writes it."""
    return format_time(datetime.now(UTC), micro=micro)


def parse_time(text: object) -> datetime | None:
    """An aware UTC datetime, or None when `text` is not an RFC 3339 timestamp.

    Fractions and offsets are accepted (other writers, kube-apiserver among them, use
    them); reading never raises, because timestamps come from objects anyone may edit.
    """
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return _utc(moment)


def seconds_since(text: object, now: datetime) -> float:
    """Seconds from the timestamp `text` to `now`; infinite when there is none to read."""
    then = parse_time(text)
    if then is None:
        return float("inf")
    return (_utc(now) - then).total_seconds()
