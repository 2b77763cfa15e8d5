"""Is the target there at all? A pre-flight check before load is sent.

A load test against an address where nothing listens would "measure" a 100% error rate
after a full duration; it is a broken setup (wrong Service, pods not ready), not a verdict
on the release. The gate therefore asks ``GET /v1/models`` first, retrying for a short
while, and stops with an error naming the address when nothing answers. Any HTTP answer,
even 401 or 404, means reachable: judging the answers is the load test's job. When the
server lists its models, the first one is the model the load test asks for by default.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

__all__ = ["ProbeResult", "probe_target"]


@dataclass(frozen=True)
class ProbeResult:
    reachable: bool
    detail: str
    models: tuple[str, ...] = ()


def _models(body: bytes) -> tuple[str, ...]:
    try:
        data = json.loads(body)
        return tuple(str(m["id"]) for m in data.get("data", []) if isinstance(m, dict))
    except (ValueError, AttributeError, KeyError, TypeError):
        return ()


def probe_target(
    base_url: str, *, timeout_s: float = 10.0, api_key: str | None = None
) -> ProbeResult:
    """Ask ``{base_url}/v1/models`` until something answers or ``timeout_s`` has passed."""
    url = f"{base_url}/v1/models"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    deadline = time.monotonic() + timeout_s
    last = "no attempt made"
    while True:
        remaining = deadline - time.monotonic()
        try:
            request = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(request, timeout=max(0.5, min(remaining, 5.0))) as resp:
                return ProbeResult(True, f"HTTP {resp.status}", _models(resp.read()))
        except urllib.error.HTTPError as exc:
            return ProbeResult(True, f"HTTP {exc.code}")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            last = (
                f"{type(reason).__name__}: {reason}"
                if isinstance(reason, Exception)
                else str(reason)
            )
        if time.monotonic() + 0.25 >= deadline:
            return ProbeResult(False, f"{url} did not answer within {timeout_s:g} s ({last})")
        time.sleep(0.25)
