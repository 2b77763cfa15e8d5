"""Issue 12, item 9: checkpoints outlive the training pod.

They lived on an emptyDir, so an evicted or rescheduled training pod started again at step
0 with a new MLflow run. `spec.training.checkpoints` puts them on a PersistentVolumeClaim
(an existing one, or one the operator creates; ReadWriteMany for nodes > 1), where a
replacement pod finds its checkpoints and its run again.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubellm.api import InvalidSpec
from kubellm.operator.builders import build_training_job, training_hash
from kubellm.operator.executing import execute
from kubellm.operator.observed import JobState, Observed
from kubellm.operator.permissions import OPERATOR_PERMISSIONS, as_triples
from kubellm.operator.planning import plan
from localkube.testing.podsecurity import restricted_violations
from tests.unit.operator.memory_kube import MemoryKube
from tests.unit.operator.test_plan import CONFIG, NOW, _kinds, _llm, _train_name


def _with(checkpoints: dict[str, Any] | None, nodes: int = 1) -> Any:
    def mutate(o: dict[str, Any]) -> None:
        o["spec"]["training"]["nodes"] = nodes
        if checkpoints is not None:
            o["spec"]["training"]["checkpoints"] = checkpoints

    return _llm(mutate=mutate)


def _job(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "Job")


def _pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(_job(objects)["spec"]["template"]["spec"])


def _env(objects: list[dict[str, Any]]) -> dict[str, str]:
    (container,) = _pod(objects)["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_without_checkpoints_spec_they_stay_on_an_empty_dir() -> None:
    objects = build_training_job(_with(None), CONFIG)
    volumes = {v["name"]: v for v in _pod(objects)["volumes"]}
    assert volumes["checkpoints"] == {"name": "checkpoints", "emptyDir": {}}
    assert _env(objects)["KUBELLM_OUTPUT_DIR"] == "/checkpoints"
    assert [o["kind"] for o in objects] == ["Job"]


def test_every_steps_sets_how_often_the_training_checkpoints_without_retraining() -> None:
    default = _with({"size": "1Gi"})
    often = _with({"size": "1Gi", "everySteps": 20})
    assert _env(build_training_job(default, CONFIG))["KUBELLM_SAVE_STEPS"] == "100"
    assert _env(build_training_job(often, CONFIG))["KUBELLM_SAVE_STEPS"] == "20"
    # where and how often checkpoints are written is not what is trained
    assert training_hash(default) == training_hash(often)
    assert "KUBELLM_SAVE_STEPS" not in _env(build_training_job(_with(None), CONFIG))


@pytest.mark.parametrize("every", [0, -1, 10_000_001])
def test_every_steps_out_of_bounds_is_refused(every: int) -> None:
    with pytest.raises(InvalidSpec, match="everySteps"):
        _with({"size": "1Gi", "everySteps": every})


def test_size_creates_a_claim_the_training_pod_mounts() -> None:
    llm = _with({"size": "20Gi", "storageClassName": "fast-ssd"})
    objects = build_training_job(llm, CONFIG)
    claim = next(o for o in objects if o["kind"] == "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "support-bot-checkpoints"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "20Gi"}},
        "storageClassName": "fast-ssd",
    }
    pod = _pod(objects)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["checkpoints"]["persistentVolumeClaim"] == {
        "claimName": "support-bot-checkpoints"
    }
    (container,) = pod["containers"]
    assert {"name": "checkpoints", "mountPath": "/checkpoints"} in container["volumeMounts"]
    assert _env(objects)["KUBELLM_OUTPUT_DIR"] == "/checkpoints/support-bot"
    assert restricted_violations(pod) == []
    assert pod["securityContext"]["fsGroup"] == 10001  # the non-root user can write the claim


def test_several_nodes_share_a_read_write_many_claim() -> None:
    objects = build_training_job(_with({"size": "100Gi"}, nodes=2), CONFIG)
    claim = next(o for o in objects if o["kind"] == "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert _job(objects)["spec"]["completionMode"] == "Indexed"


def test_an_existing_claim_is_used_not_created() -> None:
    objects = build_training_job(_with({"claimName": "team-scratch"}), CONFIG)
    assert [o["kind"] for o in objects] == ["Job"]
    volumes = {v["name"]: v for v in _pod(objects)["volumes"]}
    assert volumes["checkpoints"]["persistentVolumeClaim"] == {"claimName": "team-scratch"}
    assert _env(objects)["KUBELLM_OUTPUT_DIR"] == "/checkpoints/support-bot"


@pytest.mark.parametrize(
    "checkpoints",
    [{}, {"claimName": "a", "size": "1Gi"}, {"claimName": "a", "storageClassName": "x"}],
)
def test_claim_name_or_size_exactly_one(checkpoints: dict[str, Any]) -> None:
    with pytest.raises(InvalidSpec):
        _with(checkpoints)


def test_moving_checkpoints_to_a_claim_does_not_retrain() -> None:
    assert training_hash(_with(None)) == training_hash(_with({"size": "20Gi"}))
    assert training_hash(_with({"size": "20Gi"})) == training_hash(_with({"claimName": "x"}))


def test_claim_is_created_with_the_job_and_left_alone_while_it_runs() -> None:
    llm = _with({"size": "20Gi"})
    first = plan(llm, Observed(), CONFIG, NOW)
    assert ("PersistentVolumeClaim", "support-bot-checkpoints") in _kinds(first)
    running = JobState(name=_train_name(llm), component="training", active=1)
    later = plan(llm, Observed(jobs={running.name: running}), CONFIG, NOW)
    assert ("PersistentVolumeClaim", "support-bot-checkpoints") not in _kinds(later)
    assert not any(d.kind == "PersistentVolumeClaim" for d in later.delete)


class RecordingKube(MemoryKube):
    def __init__(self) -> None:
        super().__init__()
        self.patched: list[tuple[str, str]] = []

    def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        body: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        self.patched.append((kind, name))
        return super().patch(kind, namespace, name, body, subresource)


def test_executor_creates_the_claim_once_and_never_patches_it() -> None:
    llm = _with({"size": "20Gi"})
    kube = RecordingKube()
    kube.add({"kind": "LLM", "metadata": {"name": llm.name, "namespace": "default"}})
    execute(kube, None, llm, Observed(), plan(llm, Observed(), CONFIG, NOW), {})
    claim = kube.get("PersistentVolumeClaim", "default", "support-bot-checkpoints")
    assert claim is not None
    assert claim["metadata"]["ownerReferences"][0]["uid"] == "uid-1"  # deleted with the LLM
    # the training Job was deleted (say, by hand) and is created again: 409 for the claim,
    # whose spec a cluster refuses to change (and has bound meanwhile)
    kube.delete("Job", "default", _train_name(llm))
    execute(kube, None, llm, Observed(), plan(llm, Observed(), CONFIG, NOW), {})
    assert kube.get("Job", "default", _train_name(llm)) is not None
    assert [k for k in kube.patched if k[0] == "PersistentVolumeClaim"] == []


def test_the_operator_may_create_claims_and_nothing_more_on_them() -> None:
    granted = {t for t in as_triples(OPERATOR_PERMISSIONS) if t[1] == "persistentvolumeclaims"}
    assert granted == {("", "persistentvolumeclaims", "create")}
