"""A release woken from zero is scaled before the plan's registry calls and children: the
gateway holds requests until its pod is ready, and nothing else needs to come first."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm.api import parse_llm
from kubellm.operator.executing import execute
from kubellm.operator.observed import Observed
from kubellm.operator.planning import Deletion, Plan, RegistryAction, Scale
from kubellm.registry import RegistryUnavailable

from .memory_kube import MemoryKube
from .test_untrusted_inputs import _llm_object


class Recording(MemoryKube):
    def __init__(self, calls: list[str]) -> None:
        super().__init__()
        self.calls = calls

    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        if kind != "Event":
            self.calls.append(f"create {kind}")
        return super().create(kind, namespace, body)

    def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        body: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        replicas = (body.get("spec") or {}).get("replicas")
        self.calls.append(f"scale {name} {replicas}" if replicas is not None else f"patch {kind}")
        return super().patch(kind, namespace, name, body, subresource)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self.calls.append(f"delete {kind}")
        super().delete(kind, namespace, name)


class Registry:
    def __init__(self, calls: list[str], down: bool = False) -> None:
        self.calls = calls
        self.down = down

    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        self.calls.append("registry")
        if self.down:
            raise RegistryUnavailable("registry unreachable")


def _hpa() -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "support-bot"},
        "spec": {"minReplicas": 1},
    }


def _setup(calls: list[str]) -> tuple[Recording, Any]:
    obj = _llm_object()
    kube = Recording(calls)
    kube.add(obj)
    kube.add({"kind": "Deployment", "metadata": {"name": "support-bot-v1", "namespace": "default"}})
    return kube, parse_llm(obj)


def test_waking_from_zero_scales_before_registry_calls_and_children() -> None:
    calls: list[str] = []
    kube, llm = _setup(calls)
    the_plan = Plan(
        apply=[_hpa()],
        scale=[Scale("support-bot-v1", 1)],
        registry=[RegistryAction("set_tags", "1", tags={"k": "v"})],
    )
    execute(kube, Registry(calls), llm, Observed(), the_plan, {})  # type: ignore[arg-type]
    assert calls[:3] == ["scale support-bot-v1 1", "registry", "create HorizontalPodAutoscaler"]


def test_a_registry_that_is_down_does_not_hold_the_wake() -> None:
    calls: list[str] = []
    kube, llm = _setup(calls)
    the_plan = Plan(
        scale=[Scale("support-bot-v1", 1)],
        registry=[RegistryAction("set_tags", "1", tags={"k": "v"})],
    )
    with pytest.raises(RegistryUnavailable):
        execute(kube, Registry(calls, down=True), llm, Observed(), the_plan, {})  # type: ignore[arg-type]
    assert calls == ["scale support-bot-v1 1", "registry"]
    deployment = kube.get("Deployment", "default", "support-bot-v1")
    assert deployment is not None and deployment["spec"]["replicas"] == 1


def test_scaling_to_zero_keeps_its_place_after_the_children_before_deletions() -> None:
    calls: list[str] = []
    kube, llm = _setup(calls)
    kube.add({"kind": "HorizontalPodAutoscaler", "metadata": {"name": "support-bot"}})
    the_plan = Plan(
        apply=[{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p"}, "data": {}}],
        scale=[Scale("support-bot-v1", 0)],
        delete=[Deletion("HorizontalPodAutoscaler", "support-bot")],
    )
    execute(kube, None, llm, Observed(), the_plan, {})
    assert calls[:3] == [
        "create ConfigMap",
        "scale support-bot-v1 0",
        "delete HorizontalPodAutoscaler",
    ]
