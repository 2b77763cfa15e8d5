"""Issue 12, item 4: workload pods are hardened, images allowlisted, the API key wired.

The restricted Pod Security Standard is checked by `localkube.testing.podsecurity`, a pure
checker of its rules (tested first, rule by rule), against every pod the operator renders.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from kubellm.api.status import ConditionStatus, Phase
from kubellm.operator.builders import build_loadtest_job, build_serving_deployment
from kubellm.operator.observed import Observed
from kubellm.operator.planning import plan
from localkube.testing.podsecurity import restricted_violations, workload_pod_spec
from tests.unit.operator.test_plan import CONFIG, NOW, _candidate_ready, _cond, _llm

# -- the checker -------------------------------------------------------------------------

GOOD: dict[str, Any] = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "initContainers": [
        {
            "name": "init",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
    ],
    "containers": [
        {
            "name": "main",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
            },
            "ports": [{"containerPort": 8000}],
        }
    ],
    "volumes": [
        {"name": "a", "emptyDir": {}},
        {"name": "b", "persistentVolumeClaim": {"claimName": "x"}},
        {"name": "c", "secret": {"secretName": "s"}},
    ],
}


def _bad(mutate: Any) -> list[str]:
    pod = copy.deepcopy(GOOD)
    mutate(pod)
    return restricted_violations(pod)


def test_checker_admits_a_restricted_pod() -> None:
    assert restricted_violations(GOOD) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda p: p.update(hostNetwork=True), "hostNetwork"),
        (lambda p: p.update(hostPID=True), "hostPID"),
        (lambda p: p["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "hostPath"),
        (lambda p: p["volumes"].append({"name": "n", "nfs": {"server": "x"}}), "nfs"),
        (lambda p: p["securityContext"].pop("runAsNonRoot"), "runAsNonRoot"),
        (lambda p: p["securityContext"].update(runAsUser=0), "runAsUser must not be 0"),
        (lambda p: p["securityContext"].pop("seccompProfile"), "seccompProfile"),
        (
            lambda p: p["containers"][0]["securityContext"].update(
                seccompProfile={"type": "Unconfined"}
            ),
            "Unconfined",
        ),
        (
            lambda p: p["containers"][0]["securityContext"].update(runAsNonRoot=False),
            "runAsNonRoot must be true",
        ),
        (
            lambda p: p["initContainers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
            "initContainers[init]: allowPrivilegeEscalation",
        ),
        (
            lambda p: p["containers"][0]["securityContext"].update(privileged=True),
            "privileged",
        ),
        (
            lambda p: p["containers"][0]["securityContext"]["capabilities"].update(drop=[]),
            "drop ALL",
        ),
        (
            lambda p: p["containers"][0]["securityContext"]["capabilities"].update(
                add=["SYS_ADMIN"]
            ),
            "SYS_ADMIN",
        ),
        (
            lambda p: p["containers"][0]["securityContext"]["capabilities"].update(add=["CHOWN"]),
            "only NET_BIND_SERVICE",
        ),
        (lambda p: p["containers"][0]["ports"][0].update(hostPort=80), "hostPort"),
        (
            lambda p: p["securityContext"].update(sysctls=[{"name": "kernel.msgmax"}]),
            "kernel.msgmax",
        ),
        (
            lambda p: p["securityContext"].update(seLinuxOptions={"type": "spc_t"}),
            "seLinuxOptions",
        ),
        (
            lambda p: p.update(ephemeralContainers=[{"name": "debug"}]),
            "ephemeralContainers[debug]",
        ),
    ],
)
def test_checker_names_each_broken_rule(change: Any, expected: str) -> None:
    found = _bad(change)
    assert any(expected in v for v in found), found


def test_container_settings_can_stand_in_for_the_pods() -> None:
    def per_container(p: dict[str, Any]) -> None:
        p["securityContext"] = {}
        for c in [*p["initContainers"], *p["containers"]]:
            c["securityContext"].update(
                runAsNonRoot=True, seccompProfile={"type": "RuntimeDefault"}
            )

    assert _bad(per_container) == []


# -- the operator's workload pods ---------------------------------------------------------


def _rendered() -> dict[str, dict[str, Any]]:
    """Every pod the operator renders, for both engines and with an API key."""

    def vllm_with_key(o: dict[str, Any]) -> None:
        o["spec"]["serving"]["engine"] = {"name": "vllm"}
        o["spec"]["serving"]["apiKeySecret"] = {"name": "support-bot-key"}

    pods: dict[str, dict[str, Any]] = {}
    for label, mutate in (("kubellm", None), ("vllm", vllm_with_key)):
        llm = _llm(mutate=mutate)
        train = next(m for m in plan(llm, Observed(), CONFIG, NOW).apply if m["kind"] == "Job")
        p = plan(llm, _candidate_ready(llm), CONFIG, NOW)
        for manifest in [train, *p.apply]:
            spec = workload_pod_spec(manifest)
            if spec is not None:
                pods[f"{label}:{manifest['kind']}:{manifest['metadata']['name']}"] = dict(spec)
    multi = _llm(mutate=lambda o: o["spec"]["training"].update(nodes=2, resources={"gpus": 2}))
    job = next(m for m in plan(multi, Observed(), CONFIG, NOW).apply if m["kind"] == "Job")
    pods["torchrun:Job"] = dict(job["spec"]["template"]["spec"])
    return pods


PODS = _rendered()


def test_every_workload_pod_is_rendered() -> None:
    counts = {
        part: sum(1 for name in PODS if part in name)
        for part in ("-train-", "torchrun:", ":Deployment:", "-loadtest-")
    }
    assert counts == {"-train-": 2, "torchrun:": 1, ":Deployment:": 2, "-loadtest-": 2}


@pytest.mark.parametrize("name", sorted(PODS))
def test_workload_pod_meets_the_restricted_pod_security_standard(name: str) -> None:
    pod = PODS[name]
    assert restricted_violations(pod) == []
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsUser"] == 10001
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert "emptyDir" in tmp
    for c in [*pod.get("initContainers", []), *pod["containers"]]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["runAsNonRoot"] is True
        assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
        assert {"name": "HOME", "value": "/tmp"} in c["env"]


def test_serving_models_volume_and_tmp_have_size_limits() -> None:
    for name, pod in PODS.items():
        if ":Deployment:" not in name:
            continue
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["models"]["emptyDir"] == {"sizeLimit": "40Gi"}
        assert volumes["tmp"]["emptyDir"] == {"sizeLimit": CONFIG.tmp_size_limit}
    llm = _llm(mutate=lambda o: o["spec"]["serving"].update(modelVolumeSize="300Gi"))
    dep = build_serving_deployment(llm, "1", CONFIG, replicas=1)
    models = dep["spec"]["template"]["spec"]["volumes"][0]
    assert models == {"name": "models", "emptyDir": {"sizeLimit": "300Gi"}}


# -- image allowlist ----------------------------------------------------------------------


def test_image_outside_the_allowlist_is_refused_with_a_condition() -> None:
    llm = _llm(mutate=lambda o: o["spec"]["training"].update(image="evil.example/miner:1"))
    p = plan(llm, Observed(), CONFIG, NOW)
    assert p.apply == [] and p.delete == [] and p.registry == []
    assert p.status.phase is Phase.INVALID
    assert _cond(p, "SpecValid") == (ConditionStatus.FALSE, "ImageNotAllowed")
    assert "spec.training.image" in (p.status.message or "")
    assert "evil.example/miner:1" in (p.status.message or "")
    assert [e.type for e in p.events] == ["Warning"]


def test_allowlisted_and_operator_images_run() -> None:
    config = replace(CONFIG, image_allowlist=("registry.example.com/ml/*",))
    ok = _llm(mutate=lambda o: o["spec"]["training"].update(image="registry.example.com/ml/t:2"))
    job = next(m for m in plan(ok, Observed(), config, NOW).apply if m["kind"] == "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.example.com/ml/t:2"
    )
    own = _llm(
        mutate=lambda o: o["spec"]["serving"].update(
            engine={"name": "vllm", "image": CONFIG.vllm_image}
        )
    )
    assert _cond(plan(own, Observed(), CONFIG, NOW), "SpecValid")[0] is ConditionStatus.TRUE
    other = _llm(
        mutate=lambda o: o["spec"]["serving"].update(
            engine={"name": "vllm", "image": "registry.example.com/other/vllm:1"}
        )
    )
    p = plan(other, Observed(), config, NOW)
    assert _cond(p, "SpecValid") == (ConditionStatus.FALSE, "ImageNotAllowed")


# -- API key ------------------------------------------------------------------------------


def _key(o: dict[str, Any], engine: str = "kubellm") -> None:
    o["spec"]["serving"]["engine"] = {"name": engine}
    o["spec"]["serving"]["apiKeySecret"] = {"name": "bot-key", "key": "token"}


def test_api_key_reaches_the_server_and_the_load_test_as_a_file() -> None:
    llm = _llm(mutate=_key)
    pod = build_serving_deployment(llm, "2", CONFIG, replicas=1)["spec"]["template"]["spec"]
    server = pod["containers"][0]
    command = server["command"]
    assert command[command.index("--api-key-file") + 1] == "/etc/kubellm/api-key/api-key"
    volume = next(v for v in pod["volumes"] if v["name"] == "api-key")
    assert volume["secret"] == {
        "secretName": "bot-key",
        "items": [{"key": "token", "path": "api-key"}],
    }
    assert {"name": "api-key", "mountPath": "/etc/kubellm/api-key", "readOnly": True} in (
        server["volumeMounts"]
    )
    assert not any(m["name"] == "api-key" for m in pod["initContainers"][0]["volumeMounts"])
    job = build_loadtest_job(llm, "2", "http://c:8000", None, CONFIG)
    lt = job["spec"]["template"]["spec"]["containers"][0]
    assert lt["command"][lt["command"].index("--api-key-file") + 1] == (
        "/etc/kubellm/api-key/api-key"
    )


def test_vllm_reads_the_api_key_from_its_environment() -> None:
    llm = _llm(mutate=lambda o: _key(o, "vllm"))
    pod = build_serving_deployment(llm, "2", CONFIG, replicas=1)["spec"]["template"]["spec"]
    server, fetch = pod["containers"][0], pod["initContainers"][0]
    ref = next(e for e in server["env"] if e["name"] == "VLLM_API_KEY")
    assert ref["valueFrom"]["secretKeyRef"] == {"name": "bot-key", "key": "token"}
    assert not any(e["name"] == "VLLM_API_KEY" for e in fetch["env"])


def test_no_api_key_means_no_flag_and_no_volume() -> None:
    llm = _llm()
    pod = build_serving_deployment(llm, "2", CONFIG, replicas=1)["spec"]["template"]["spec"]
    assert "--api-key-file" not in pod["containers"][0]["command"]
    assert not any(v["name"] == "api-key" for v in pod["volumes"])
