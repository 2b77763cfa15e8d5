"""One LLM, the real reconciler, and everything around it that the tests play by hand.

The reconciler talks REST to an in-process localkube API server through a `CountingKube`,
and to a `MemoryRegistry`. No controller runs: the test is the Job controller, the
Deployment controller, the training pod and the load-test pod, writing through the API
exactly the status fields those would (a Job's `Complete` condition, a Deployment's
available replicas, a pod's termination message). The world's own client sends a user
agent of its own, so faults injected for the operator's requests never hit it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from kubellm.api import parse_llm
from kubellm.api.results import TrainingSummary
from kubellm.loadtests.report import termination_summary
from kubellm.operator.config import OperatorConfig
from kubellm.operator.kube import RestKubeApi
from kubellm.operator.naming import LABEL_COMPONENT, LABEL_LLM, LABEL_VERSION
from kubellm.operator.reconciling import Outcome, Reconciler

from .fakes import CountingKube, MemoryRegistry

__all__ = ["NAME", "TRACKING_URI", "World"]

REPO = Path(__file__).resolve().parents[3]
NAME = "bot"
#: never contacted: the reconciler's registry_factory answers with the MemoryRegistry
TRACKING_URI = "http://mlflow.invalid:5000"
CONFIG = OperatorConfig(tracking_uri=TRACKING_URI, drain_delay=0.0)
STAMP = "2026-01-01T00:00:00Z"


def llm_manifest() -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((REPO / "examples/tiny-pretrain.yaml").read_text())
    obj["metadata"] = {"name": NAME}
    obj["spec"]["model"]["registeredModel"] = NAME
    return obj


class World:
    def __init__(self, namespace: str, operator_client: Any, world_client: Any) -> None:
        self.namespace = namespace
        self.kube = RestKubeApi(world_client)
        world_client.user_agent = "io-tests"  # not the operator's: faults pass it by
        self.operator = CountingKube(RestKubeApi(operator_client))
        self.registry = MemoryRegistry()
        self.reconciler = Reconciler(
            self.operator,
            CONFIG,
            registry_factory=lambda uri: self.registry,  # type: ignore[arg-type,return-value]
        )
        self.manifest = llm_manifest()
        self.spec = parse_llm({**copy.deepcopy(self.manifest), "metadata": {"name": NAME}}).spec

    # -- the user ------------------------------------------------------------------
    def create_llm(self) -> None:
        self.kube.create("LLM", self.namespace, copy.deepcopy(self.manifest))

    def reconcile(self) -> Outcome:
        """One reconcile, as the LLM's kopf daemon runs it; the test decides when the next
        one runs (``requeue_after`` is only reported)."""
        return self.reconciler.reconcile(self.namespace, NAME)

    def llm(self) -> dict[str, Any]:
        obj = self.kube.get("LLM", self.namespace, NAME)
        assert obj is not None
        return obj

    def status(self) -> dict[str, Any]:
        return dict(self.llm().get("status") or {})

    def condition(self, type_: str) -> dict[str, Any]:
        conds = self.status().get("conditions") or []
        return next(c for c in conds if c["type"] == type_)

    def children(
        self, kind: str, component: str | None = None, version: str | None = None
    ) -> list[dict[str, Any]]:
        selector = f"{LABEL_LLM}={NAME}"
        if component is not None:
            selector += f",{LABEL_COMPONENT}={component}"
        if version is not None:
            selector += f",{LABEL_VERSION}={version}"
        return self.kube.list(kind, self.namespace, selector)

    def one(self, kind: str, component: str, version: str | None = None) -> dict[str, Any]:
        items = self.children(kind, component, version)
        assert len(items) == 1, [i["metadata"]["name"] for i in items]
        return items[0]

    def events(self) -> list[dict[str, Any]]:
        return self.kube.list("Event", self.namespace)

    # -- the controllers and pods the test plays -------------------------------------
    def finish_job(self, job: dict[str, Any], message: str | None, exit_code: int = 0) -> None:
        """A pod of ``job`` ends with ``message`` in its termination message, and the Job
        controller marks the Job Complete (exit code 0) or Failed."""
        name = job["metadata"]["name"]
        labels = dict(job["metadata"].get("labels") or {})
        if message is not None:
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{name}-pod",
                    "labels": {**labels, "batch.kubernetes.io/job-name": name},
                    "ownerReferences": [
                        {
                            "apiVersion": "batch/v1",
                            "kind": "Job",
                            "name": name,
                            "uid": job["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "kubellm:test"}],
                },
            }
            self.kube.create("Pod", self.namespace, pod)
            terminated = {"exitCode": exit_code, "reason": "Completed", "message": message}
            self.kube.patch(
                "Pod",
                self.namespace,
                f"{name}-pod",
                {
                    "status": {
                        "phase": "Succeeded" if exit_code == 0 else "Failed",
                        "containerStatuses": [
                            {
                                "name": "main",
                                "image": "kubellm:test",
                                "imageID": "",
                                "ready": False,
                                "restartCount": 0,
                                "state": {"terminated": terminated},
                            }
                        ],
                    }
                },
                subresource="status",
            )
        ok = exit_code == 0
        final = "Complete" if ok else "Failed"
        criteria = "SuccessCriteriaMet" if ok else "FailureTarget"
        conds = [
            {"type": t, "status": "True", "lastTransitionTime": STAMP} for t in (criteria, final)
        ]
        status: dict[str, Any] = {
            "startTime": STAMP,
            "succeeded" if ok else "failed": 1,
            "conditions": conds,
        }
        if ok:
            status["completionTime"] = STAMP
        self.kube.patch("Job", self.namespace, name, {"status": status}, subresource="status")

    def train(self, version: str = "1") -> None:
        """The training Job succeeds: `kubellm train` registered ``version`` and moved the
        candidate alias to it."""
        job = self.one("Job", "training")
        summary = TrainingSummary(model_version=version, run_id="run1", eval_loss=2.5)
        self.finish_job(job, json.dumps(summary.dump()))
        alias = self.spec.rollout.candidate_alias
        self.registry.aliases[(self.spec.model.registered_model, alias)] = version

    def make_available(self, deployment: dict[str, Any]) -> None:
        """The Deployment controller and the kubelet: every replica ready and available."""
        replicas = int(deployment["spec"].get("replicas") or 1)
        self.kube.patch(
            "Deployment",
            self.namespace,
            deployment["metadata"]["name"],
            {
                "status": {
                    "observedGeneration": deployment["metadata"].get("generation", 1),
                    "replicas": replicas,
                    "updatedReplicas": replicas,
                    "readyReplicas": replicas,
                    "availableReplicas": replicas,
                }
            },
            subresource="status",
        )

    def pass_load_test(self, version: str | None = None) -> None:
        """The load-test Job's pod writes a passing verdict, as `kubellm loadtest` does."""
        job = self.one("Job", "loadtest", version)
        figures = {"p95LatencyMs": 120.0, "requestsPerSecond": 9.5, "errorRate": 0.0}
        doc = {"verdict": "pass", "figures": figures, "reasons": []}
        self.finish_job(job, json.dumps(termination_summary(doc)))

    def fail_load_test(self, reason: str) -> None:
        """The load-test Job's pod misses the SLO: verdict fail, exit code 1."""
        job = self.one("Job", "loadtest")
        doc = {"verdict": "fail", "figures": {"p95LatencyMs": 9000.0}, "reasons": [reason]}
        self.finish_job(job, json.dumps(termination_summary(doc)), exit_code=1)

    def deploy_candidate(self) -> None:
        """From a new LLM to its candidate's load test running."""
        self.create_llm()
        self.reconcile()
        self.train()
        self.reconcile()
        self.make_available(self.one("Deployment", "serving"))
        self.reconcile()

    def converge(self, passes: int = 8) -> Outcome:
        """Take a new LLM from creation to production serving, nothing pending."""
        self.deploy_candidate()
        self.pass_load_test()
        return self.settle(passes)

    def settle(self, passes: int = 8) -> Outcome:
        """Reconcile, starting every new serving Deployment, until production serves and
        nothing is pending."""
        for _ in range(passes):
            outcome = self.reconcile()
            for dep in self.children("Deployment", "serving"):
                if not (dep.get("status") or {}).get("availableReplicas"):
                    self.make_available(dep)
            if outcome.requeue_after is None and self.status().get("phase") == "Ready":
                return outcome
        raise AssertionError(f"not converged after {passes} passes: {self.status()}")
