"""The operator's reading of live traffic: each gateway replica's ``/traffic`` for a canary
step's window, or for the post-promotion watch's, added up.

Only an LLM whose status shows a canary step or a watch in progress is read; the window
starts at the step's ``stepStartedAt``, which lives in the status, so a restarted operator
reads the same window again (level-triggered); a watch's window is its last few intervals,
never from before the promotion (`planning.watching.watch_since`). The gateways are found
as for demand (`demanding`): the host of ``KUBELLM_GATEWAY_DEMAND_URL`` (a headless
Service) resolves to every gateway pod, and each is asked on its own with a short timeout.
A replica that does not answer is left out, so the step sees fewer requests and fails
closed rather than passes (a watch sees fewer and goes on); with no answer at all the
reading is None. The judging itself is `planning.analysis`, a pure function.
"""

from __future__ import annotations

import logging
import socket
import urllib.request
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit, urlunsplit

from kubellm.api import untrusted
from kubellm.api.resource import LLM
from kubellm.api.timestamps import format_time, parse_time
from kubellm.gateway.windows import ReleaseTraffic, combine, from_json
from kubellm.operator.config import OperatorConfig
from kubellm.operator.observed import LiveTraffic
from kubellm.operator.planning.watching import watch_since

__all__ = ["read_live", "read_watch_live", "traffic_url"]

log = logging.getLogger(__name__)

#: seconds per gateway replica (a reconcile waits for them one after the other)
TIMEOUT = 2.0


def traffic_url(demand_url: str) -> str:
    """The gateways' ``/traffic`` endpoint beside their ``/demand`` one."""
    parts = urlsplit(demand_url)
    path = parts.path.rsplit("/", 1)[0] + "/traffic"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _addresses(url: str) -> list[str]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        log.warning("live traffic: cannot resolve %s: %s", url, exc)
        return []
    return sorted({str(info[4][0]) for info in infos})


def _with_host(url: str, address: str) -> str:
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _ask(url: str) -> dict[str, ReleaseTraffic] | None:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
            return from_json(untrusted.loads(resp.read(4 << 20)))
    except (OSError, ValueError) as exc:
        log.info("live traffic: %s did not answer: %s", url, exc)
        return None


def read_live(config: OperatorConfig, llm: LLM) -> LiveTraffic | None:
    """The gateways' answers for ``llm``'s canary step in progress; None without a step,
    without a gateway, or when no gateway answered."""
    cand = llm.status.candidate
    canary = cand.canary if cand is not None else None
    if canary is None or not config.gateway_demand_url:
        return None
    return _read(config, llm, canary.step_started_at)


def read_watch_live(
    config: OperatorConfig, llm: LLM, now: datetime | None = None
) -> LiveTraffic | None:
    """The gateways' answers for ``llm``'s post-promotion watch in progress; None without a
    watch, without a gateway, or when no gateway answered."""
    if not config.gateway_demand_url:
        return None
    since = watch_since(llm, now or datetime.now(UTC))
    return None if since is None else _read(config, llm, format_time(since))


def _read(config: OperatorConfig, llm: LLM, since: str) -> LiveTraffic | None:
    started = parse_time(since)
    if started is None or not config.gateway_demand_url:
        return None
    base = traffic_url(config.gateway_demand_url)
    query = urlencode({"llm": f"{llm.namespace}/{llm.name}", "since": f"{started.timestamp():.3f}"})
    addresses = _addresses(base)
    answers = [_ask(_with_host(base, a) + "?" + query) for a in addresses]
    got = [a for a in answers if a is not None]
    if not got:
        return None
    return LiveTraffic(
        since=since,
        releases=combine(got),
        answered=len(got),
        asked=len(addresses),
    )
