"""Operator settings: one typed object, read once from the environment or flags.

Defaults suit a real cluster; `kubellm demo` and the tests override them (image command,
poll interval) through the same environment variables the Helm chart sets.
"""

from __future__ import annotations

import json
import math
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubellm.registry import HttpPolicy, TrackingAccess

__all__ = ["OperatorConfig"]


def _duration_seconds(text: str) -> float:
    text = text.strip()
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for suffix in ("ms", "s", "m", "h"):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * units[suffix]
    return float(text)


@dataclass(frozen=True)
class OperatorConfig:
    image: str = "ghcr.io/kubellm/kubellm:0.1.0"
    cuda_image: str = "ghcr.io/kubellm/kubellm:0.1.0-cuda"
    vllm_image: str = "vllm/vllm-openai:v0.11.0"
    #: argv prefix that runs `kubellm` inside child containers (the image's entrypoint).
    command: tuple[str, ...] = ("kubellm",)
    gpu_resource: str = "nvidia.com/gpu"
    tracking_uri: str | None = None
    namespaces: tuple[str, ...] = ()
    #: seconds after which an LLM nobody nudged is reconciled again (registry changes no
    #: webhook reported, drift of its children); also kopf's wait before retrying a failure
    poll_interval: float = 30.0
    #: how long a retired release keeps serving after the Service switched away from it.
    drain_delay: float = 3.0
    webhook_port: int = 8080
    webhook_host: str = "0.0.0.0"
    webhook_secret: str | None = None
    webhook_public_url: str | None = None
    serving_port: int = 8000
    default_node_selector: dict[str, str] = field(default_factory=dict)
    default_tolerations: tuple[dict[str, Any], ...] = ()
    #: extra env for every child container (e.g. HF_HUB_OFFLINE in air-gapped clusters).
    child_env: dict[str, str] = field(default_factory=dict)
    #: tracking URIs an LLM may name besides ``tracking_uri`` (the operator reaches no
    #: other, so its MLflow credentials go nowhere else); see `kubellm.registry.access`.
    allowed_tracking_uris: tuple[str, ...] = ()
    #: bounds of every registry call of the operator: seconds per connect/read, retries
    registry_timeout: float = 5.0
    registry_retries: int = 1
    #: consecutive unreachable calls that open a tracking server's circuit, and for how long
    breaker_threshold: int = 3
    breaker_cooldown: float = 10.0
    #: HMAC key of the promotion tag the operator writes on each version it promoted; with
    #: it, a promotion survives a lost status (only the operator holds the key). None: the
    #: operator trusts its status alone.
    promotion_key: str | None = None
    #: the gateways' demand endpoint, e.g. http://kubellm-gateway-admin.kubellm-system.svc:
    #: 9090/demand (every address of the host is polled); None: nothing scales to zero
    gateway_demand_url: str | None = None
    #: shell-style patterns of images an LLM may name (spec.training.image,
    #: spec.serving.engine.image) besides the operator's own three; see `hardening`.
    image_allowlist: tuple[str, ...] = ()
    #: uid and gid of every workload container (the kubellm image's non-root user)
    workload_uid: int = 10001
    #: sizeLimit of the /tmp emptyDir of serving and load-test pods
    tmp_size_limit: str = "2Gi"

    def tracking_access(self) -> TrackingAccess:
        """The tracking servers the operator may reach: its own and the allowed ones."""
        return TrackingAccess.of(self.tracking_uri, self.allowed_tracking_uris)

    def http_policy(self) -> HttpPolicy:
        """Timeouts and retries of the operator's registry calls."""
        return HttpPolicy(
            timeout_s=max(1, math.ceil(self.registry_timeout)), max_retries=self.registry_retries
        )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> OperatorConfig:
        """Settings from ``KUBELLM_*`` variables (as the Helm chart sets them); unset or
        empty variables keep the defaults."""
        e = dict(os.environ if env is None else env)
        if not e.get("KUBELLM_MLFLOW_TRACKING_URI") and e.get("MLFLOW_TRACKING_URI"):
            e["KUBELLM_MLFLOW_TRACKING_URI"] = e["MLFLOW_TRACKING_URI"]
        kwargs = {
            field_name: parse(e[var]) for var, (field_name, parse) in _ENV.items() if e.get(var)
        }
        return cls(**kwargs)


def _csv(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


#: environment variable -> (field, parser)
_ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "KUBELLM_IMAGE": ("image", str),
    "KUBELLM_CUDA_IMAGE": ("cuda_image", str),
    "KUBELLM_VLLM_IMAGE": ("vllm_image", str),
    "KUBELLM_CHILD_COMMAND": ("command", lambda v: tuple(shlex.split(v))),
    "KUBELLM_GPU_RESOURCE": ("gpu_resource", str),
    "KUBELLM_MLFLOW_TRACKING_URI": ("tracking_uri", str),
    "KUBELLM_NAMESPACES": ("namespaces", _csv),
    "KUBELLM_POLL_INTERVAL": ("poll_interval", _duration_seconds),
    "KUBELLM_DRAIN_DELAY": ("drain_delay", _duration_seconds),
    "KUBELLM_WEBHOOK_PORT": ("webhook_port", int),
    "KUBELLM_WEBHOOK_HOST": ("webhook_host", str),
    "KUBELLM_WEBHOOK_SECRET": ("webhook_secret", str),
    "KUBELLM_WEBHOOK_PUBLIC_URL": ("webhook_public_url", str),
    "KUBELLM_DEFAULT_NODE_SELECTOR": ("default_node_selector", lambda v: dict(json.loads(v))),
    "KUBELLM_DEFAULT_TOLERATIONS": ("default_tolerations", lambda v: tuple(json.loads(v))),
    "KUBELLM_CHILD_ENV": ("child_env", lambda v: dict(json.loads(v))),
    "KUBELLM_ALLOWED_TRACKING_URIS": ("allowed_tracking_uris", _csv),
    "KUBELLM_REGISTRY_TIMEOUT": ("registry_timeout", _duration_seconds),
    "KUBELLM_REGISTRY_RETRIES": ("registry_retries", int),
    "KUBELLM_REGISTRY_BREAKER_THRESHOLD": ("breaker_threshold", int),
    "KUBELLM_REGISTRY_BREAKER_COOLDOWN": ("breaker_cooldown", _duration_seconds),
    "KUBELLM_PROMOTION_KEY": ("promotion_key", str),
    "KUBELLM_GATEWAY_DEMAND_URL": ("gateway_demand_url", str),
    "KUBELLM_IMAGE_ALLOWLIST": ("image_allowlist", _csv),
    "KUBELLM_WORKLOAD_UID": ("workload_uid", int),
    "KUBELLM_TMP_SIZE_LIMIT": ("tmp_size_limit", str),
}
