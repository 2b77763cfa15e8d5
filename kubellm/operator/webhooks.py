"""MLflow registry webhooks: verify a delivery, then nudge the LLMs that use the model.

Verification is a pure function: an unsigned delivery, a bad or non-ASCII signature, a
timestamp that is not a finite number or lies outside the tolerance window, and a delivery
id already accepted within that window (a replay) are all refused with 401. The signature
is MLflow's: `v1,<base64 HMAC-SHA256(secret, "{delivery_id}.{timestamp}.{body}")>`. The
polling interval stays as a fallback, so a lost delivery only delays a rollout.

An accepted delivery does not reconcile anything itself: it nudges the reconcile daemons of
the LLMs that use the model (see `handlers`), on the event loop, at once. kopf runs those
reconciles, one at a time per LLM, and logs their errors; the delivery is answered with the
LLMs nudged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kubellm.operator.metrics import WEBHOOKS
from kubellm.registry import Registry

__all__ = [
    "MODEL_EVENTS",
    "DeliveryLog",
    "RegistryEvent",
    "WebhookRejected",
    "build_app",
    "parse_event",
    "register_webhook",
    "sign",
    "verify",
]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_HEADER = "X-MLflow-Delivery-Id"
TOLERANCE_SECONDS = 300
MAX_DELIVERY_ID = 200
MODEL_EVENTS = ("model_version.created", "model_version_alias.created")


class WebhookRejected(Exception):
    """The delivery must not be acted on (answered 401)."""


@dataclass(frozen=True)
class RegistryEvent:
    entity: str
    action: str
    model: str
    version: str | None
    alias: str | None


class DeliveryLog:
    """Delivery ids accepted recently: a second delivery with the same id is a replay.

    A timestamp may lie up to the tolerance in the future, so a delivery stays acceptable
    for twice the tolerance after it arrived; ids older than that need no memory, the
    timestamp check refuses them. Bounded: past ``max_entries`` the oldest are forgotten
    (only correctly signed deliveries get here)."""

    def __init__(self, ttl: float = 2 * TOLERANCE_SECONDS, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, delivery_id: str, now: float) -> bool:
        """Record ``delivery_id``; False when it was already seen within the window."""
        with self._lock:
            while self._seen:
                oldest, at = next(iter(self._seen.items()))
                if now - at <= self.ttl and len(self._seen) < self.max_entries:
                    break
                del self._seen[oldest]
            if delivery_id in self._seen:
                return False
            self._seen[delivery_id] = now
            return True


def sign(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    digest = hmac.new(
        secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256
    ).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str,
    headers: dict[str, str],
    body: str,
    *,
    now: float | None = None,
    tolerance: float = TOLERANCE_SECONDS,
    deliveries: DeliveryLog | None = None,
) -> None:
    """Raise `WebhookRejected` unless the delivery is signed with ``secret``, fresh and
    (given ``deliveries``) not seen before."""
    lower = {k.lower(): v for k, v in headers.items()}
    signature = lower.get(SIGNATURE_HEADER.lower())
    timestamp = lower.get(TIMESTAMP_HEADER.lower())
    delivery = lower.get(DELIVERY_HEADER.lower())
    if not signature or not timestamp or not delivery:
        raise WebhookRejected("unsigned delivery: signature, timestamp and delivery id required")
    if not (signature.isascii() and timestamp.isascii() and delivery.isascii()):
        raise WebhookRejected("signature, timestamp and delivery id must be ASCII")
    if len(delivery) > MAX_DELIVERY_ID:
        raise WebhookRejected(f"delivery id longer than {MAX_DELIVERY_ID} characters")
    try:
        sent = float(timestamp)
    except ValueError as exc:
        raise WebhookRejected(f"bad timestamp {timestamp[:40]!r}") from exc
    if not math.isfinite(sent):
        raise WebhookRejected(f"bad timestamp {timestamp[:40]!r}: not a finite number")
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance:
        raise WebhookRejected(f"stale delivery: timestamp {sent:.0f} is {current - sent:.0f}s off")
    expected = sign(secret, delivery, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise WebhookRejected("signature mismatch")
    if deliveries is not None and not deliveries.remember(delivery, current):
        raise WebhookRejected(f"replayed delivery {delivery!r}: already accepted")


def parse_event(body: str) -> RegistryEvent:
    try:
        payload = json.loads(body)
        data = payload.get("data") or {}
        return RegistryEvent(
            entity=str(payload["entity"]),
            action=str(payload["action"]),
            model=str(data["name"]),
            version=str(data["version"]) if data.get("version") is not None else None,
            alias=data.get("alias"),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not an MLflow registry event: {exc}") from exc


def build_app(secret: str | None, nudge_model: Callable[[str, str], list[str]]) -> web.Application:
    """The operator's HTTP app: `/webhooks/mlflow`, `/metrics`, `/healthz`.

    ``nudge_model(model, why)`` wakes the LLMs of a registered model and returns their
    ``namespace/name`` (`handlers.Nudges.model`); it must not block."""
    deliveries = DeliveryLog()

    async def mlflow_hook(request: web.Request) -> web.Response:
        body = await request.text()
        if secret is None:
            WEBHOOKS.labels("disabled").inc()
            return web.json_response({"error": "webhooks are disabled (no secret)"}, status=403)
        try:
            verify(secret, dict(request.headers), body, deliveries=deliveries)
            event = parse_event(body)
        except WebhookRejected as exc:
            WEBHOOKS.labels("rejected").inc()
            log.warning("refused webhook delivery: %s", exc)
            return web.json_response({"error": str(exc)}, status=401)
        except ValueError as exc:
            WEBHOOKS.labels("invalid").inc()
            return web.json_response({"error": str(exc)}, status=400)
        targets = nudge_model(event.model, "webhook")
        WEBHOOKS.labels("accepted").inc()
        log.info(
            "registry %s.%s for %s: reconciling %d LLM(s)",
            event.entity,
            event.action,
            event.model,
            len(targets),
        )
        return web.json_response({"reconciling": targets})

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/webhooks/mlflow", mlflow_hook)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


def register_webhook(registry: Registry, url: str, secret: str, name: str = "kubellm") -> None:
    """Create (once) the registry webhook on the tracking server that points at us.

    Blocking (registry calls): run it in a thread, never on the event loop."""
    if registry.ensure_webhook(url, secret, list(MODEL_EVENTS), name):
        log.info("registered MLflow webhook %s -> %s", name, url)
