"""Operator settings: one typed object, read once from the environment or flags.

Defaults suit a real cluster; `kubellm demo` and the tests override them (image command,
poll interval) through the same environment variables the Helm chart sets.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from typing import Any

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

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> OperatorConfig:
        e = dict(os.environ if env is None else env)
        kwargs: dict[str, Any] = {}
        if e.get("KUBELLM_IMAGE"):
            kwargs["image"] = e["KUBELLM_IMAGE"]
        if e.get("KUBELLM_CUDA_IMAGE"):
            kwargs["cuda_image"] = e["KUBELLM_CUDA_IMAGE"]
        if e.get("KUBELLM_VLLM_IMAGE"):
            kwargs["vllm_image"] = e["KUBELLM_VLLM_IMAGE"]
        if e.get("KUBELLM_CHILD_COMMAND"):
            kwargs["command"] = tuple(shlex.split(e["KUBELLM_CHILD_COMMAND"]))
        if e.get("KUBELLM_GPU_RESOURCE"):
            kwargs["gpu_resource"] = e["KUBELLM_GPU_RESOURCE"]
        uri = e.get("KUBELLM_MLFLOW_TRACKING_URI") or e.get("MLFLOW_TRACKING_URI")
        if uri:
            kwargs["tracking_uri"] = uri
        if e.get("KUBELLM_NAMESPACES"):
            kwargs["namespaces"] = tuple(
                n.strip() for n in e["KUBELLM_NAMESPACES"].split(",") if n.strip()
            )
        if e.get("KUBELLM_POLL_INTERVAL"):
            kwargs["poll_interval"] = _duration_seconds(e["KUBELLM_POLL_INTERVAL"])
        if e.get("KUBELLM_DRAIN_DELAY"):
            kwargs["drain_delay"] = _duration_seconds(e["KUBELLM_DRAIN_DELAY"])
        if e.get("KUBELLM_WEBHOOK_PORT"):
            kwargs["webhook_port"] = int(e["KUBELLM_WEBHOOK_PORT"])
        if e.get("KUBELLM_WEBHOOK_HOST"):
            kwargs["webhook_host"] = e["KUBELLM_WEBHOOK_HOST"]
        if e.get("KUBELLM_WEBHOOK_SECRET"):
            kwargs["webhook_secret"] = e["KUBELLM_WEBHOOK_SECRET"]
        if e.get("KUBELLM_WEBHOOK_PUBLIC_URL"):
            kwargs["webhook_public_url"] = e["KUBELLM_WEBHOOK_PUBLIC_URL"]
        if e.get("KUBELLM_DEFAULT_NODE_SELECTOR"):
            kwargs["default_node_selector"] = dict(json.loads(e["KUBELLM_DEFAULT_NODE_SELECTOR"]))
        if e.get("KUBELLM_DEFAULT_TOLERATIONS"):
            kwargs["default_tolerations"] = tuple(json.loads(e["KUBELLM_DEFAULT_TOLERATIONS"]))
        if e.get("KUBELLM_CHILD_ENV"):
            kwargs["child_env"] = dict(json.loads(e["KUBELLM_CHILD_ENV"]))
        return cls(**kwargs)
