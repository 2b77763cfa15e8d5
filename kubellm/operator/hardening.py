"""What every workload pod gets: the restricted Pod Security Standard, and only the images
the operator's configuration allows.

Training, serving and load-test pods run code and weights that ML teams choose, and serving
pods face users, so each one runs as the image's non-root user (uid 10001 in kubellm's
image), with a read-only root filesystem, no capabilities, no privilege escalation, the
runtime's default seccomp profile and no ServiceAccount token (no workload calls the
Kubernetes API). Writable places are volumes: an emptyDir at /tmp (``HOME`` points there,
so library caches land in it), plus each pod's own volumes. The builders stay readable:
they describe what a pod does, and `harden` adds this once for all of them.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from kubellm.api.resource import LLM
from kubellm.operator.config import OperatorConfig

__all__ = ["TMP_DIR", "disallowed_images", "harden"]

TMP_DIR = "/tmp"


def _container_context(uid: int) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def harden(pod_spec: dict[str, Any], config: OperatorConfig, *, tmp_limit: str | None) -> None:
    """Apply the restricted profile to ``pod_spec`` in place, with an emptyDir at /tmp
    (``tmp_limit`` its sizeLimit; None for pods that legitimately write big files there)."""
    uid = config.workload_uid
    pod_spec["automountServiceAccountToken"] = False
    pod_spec["securityContext"] = {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    tmp: dict[str, Any] = {"sizeLimit": tmp_limit} if tmp_limit else {}
    pod_spec.setdefault("volumes", []).append({"name": "tmp", "emptyDir": tmp})
    for container in [*pod_spec.get("initContainers", []), *pod_spec["containers"]]:
        container["securityContext"] = _container_context(uid)
        container.setdefault("volumeMounts", []).append({"name": "tmp", "mountPath": TMP_DIR})
        env = container.setdefault("env", [])
        if not any(e.get("name") == "HOME" for e in env):
            env.append({"name": "HOME", "value": TMP_DIR})


def _allowed(image: str, config: OperatorConfig) -> bool:
    own = {config.image, config.cuda_image, config.vllm_image}
    return image in own or any(fnmatchcase(image, p) for p in config.image_allowlist)


def disallowed_images(llm: LLM, config: OperatorConfig) -> list[str]:
    """One message per image override of ``llm`` that the operator may not run.

    The operator's own images are always allowed; anything else must match a pattern of
    ``KUBELLM_IMAGE_ALLOWLIST`` (shell-style: ``registry.example.com/ml/*``). An image is
    code that runs with the LLM's registry credentials and on its GPUs: which ones may run
    is the cluster admin's choice, not the LLM author's.
    """
    wanted = []
    if llm.spec.training is not None and llm.spec.training.image:
        wanted.append(("spec.training.image", llm.spec.training.image))
    if llm.spec.serving.engine.image:
        wanted.append(("spec.serving.engine.image", llm.spec.serving.engine.image))
    patterns = ", ".join(config.image_allowlist) or "empty: only the operator's own images"
    return [
        f"{field}: image {image!r} is not allowed by the operator's image allowlist "
        f"(KUBELLM_IMAGE_ALLOWLIST: {patterns})"
        for field, image in wanted
        if not _allowed(image, config)
    ]
