"""When the API server refuses a child (RBAC, admission, quota), users see why in status."""

from __future__ import annotations

from typing import Any

import pytest

from kubellm.api import parse_llm
from kubellm.operator.executing import ChildrenRefused, execute
from kubellm.operator.kube import ApiError
from kubellm.operator.observed import Observed
from kubellm.operator.planning import Plan

from .memory_kube import MemoryKube
from .test_untrusted_inputs import _llm_object


class ForbiddenJobs(MemoryKube):
    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        if kind == "Job":
            raise ApiError(403, "Forbidden", 'jobs.batch is forbidden: User "sa" cannot create')
        return super().create(kind, namespace, body)


def _job(name: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": {}}


def _config_map(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {}}


def test_a_forbidden_child_is_reported_in_status_and_an_event_then_retried() -> None:
    obj = _llm_object()
    kube = ForbiddenJobs()
    kube.add(obj)
    llm = parse_llm(obj)
    the_plan = Plan(apply=[_job("support-bot-train-1"), _config_map("support-bot-prompts")])
    with pytest.raises(ChildrenRefused, match="Forbidden"):
        execute(kube, None, llm, Observed(), the_plan, {})
    status = kube.get("LLM", "default", "support-bot")
    assert status is not None
    message = status["status"]["message"]
    assert message.startswith("the API server refused: Job support-bot-train-1: 403 Forbidden")
    assert [e["reason"] for e in kube.events] == ["ApplyRefused"]
    # the children it may create are still created
    assert kube.get("ConfigMap", "default", "support-bot-prompts") is not None


def test_other_api_errors_are_not_swallowed() -> None:
    class Broken(MemoryKube):
        def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
            raise ApiError(500, "InternalError", "etcd is down")

    obj = _llm_object()
    kube = Broken()
    kube.add(obj)
    with pytest.raises(ApiError, match="500"):
        execute(kube, None, parse_llm(obj), Observed(), Plan(apply=[_job("j")]), {})
