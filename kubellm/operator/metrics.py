"""Operator metrics on /metrics: how often it reconciles, how long that takes, and how
many releases it promoted, refused or rolled back. Prometheus scrapes them through the
chart's Service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["LLMS", "RECONCILES", "RECONCILE_SECONDS", "ROLLBACKS", "ROLLOUTS", "WEBHOOKS"]

RECONCILES = Counter(
    "kubellm_operator_reconciles_total", "Reconciles by trigger and result", ["trigger", "result"]
)
RECONCILE_SECONDS = Histogram(
    "kubellm_operator_reconcile_seconds",
    "Wall time of one reconcile",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ROLLOUTS = Counter("kubellm_operator_rollouts_total", "Gate verdicts", ["verdict"])
ROLLBACKS = Counter(
    "kubellm_operator_rollbacks_total",
    "Rollbacks of production, by trigger: watch (post-promotion breach) or annotation",
    ["trigger"],
)
WEBHOOKS = Counter("kubellm_operator_webhooks_total", "Registry webhook deliveries", ["result"])
LLMS = Gauge("kubellm_operator_llms", "LLM objects the operator knows of")
