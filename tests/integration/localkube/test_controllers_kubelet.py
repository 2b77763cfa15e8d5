"""The kubelet: init containers, volumes, probes, restart policies and pod-process faults."""

from __future__ import annotations

from typing import Any

from localkube.testing.localkube import Cluster

from .controllers_support import (
    apply,
    condition,
    get,
    job,
    needs_kubectl,
    pods,
    wait_for,
    web_deployment,
)

pytestmark = needs_kubectl


def pod_manifest(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def pod(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return get(cluster, f"/api/v1/namespaces/{ns}/pods/{name}")


def test_init_containers_run_in_order_and_share_volumes_with_the_main_container(
    localkube: Cluster, ns: str
):
    apply(
        localkube,
        ns,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg"},
            "data": {"greeting": "hello"},
        },
    )
    apply(
        localkube,
        ns,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "sec"},
            "stringData": {"token": "t0k"},
        },
    )
    mounts = [
        {"name": "work", "mountPath": "/scratch"},
        {"name": "cfg", "mountPath": "/etc/cfg"},
        {"name": "sec", "mountPath": "/etc/sec"},
        {"name": "models", "mountPath": "/models"},
    ]
    spec = {
        "restartPolicy": "Never",
        "volumes": [
            {"name": "work", "emptyDir": {}},
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "sec", "secret": {"secretName": "sec"}},
            {"name": "models", "persistentVolumeClaim": {"claimName": "models"}},
        ],
        "initContainers": [
            {
                "name": "first",
                "image": "x",
                "command": ["sh", "-c", "echo first >> /scratch/order"],
                "volumeMounts": mounts,
            },
            {
                "name": "second",
                "image": "x",
                "command": ["sh", "-c", "echo second >> /scratch/order"],
                "volumeMounts": mounts,
            },
        ],
        "containers": [
            {
                "name": "main",
                "image": "x",
                "command": ["sh", "-c"],
                "args": [
                    "cat /scratch/order; cat /etc/cfg/greeting; echo; cat /etc/sec/token; echo; "
                    "echo kept > $(OUT)"
                ],
                "env": [{"name": "OUT", "value": "/models/file"}],
                "volumeMounts": mounts,
            }
        ],
    }
    apply(localkube, ns, pod_manifest("init", spec))
    done = wait_for(
        lambda: (p := pod(localkube, ns, "init"))["status"].get("phase") == "Succeeded" and p,
        what="pod done",
    )
    assert [
        s["state"]["terminated"]["exitCode"] for s in done["status"]["initContainerStatuses"]
    ] == [0, 0]
    logs = localkube.kubectl("logs", "init", "-n", ns).stdout.split()
    assert logs == ["first", "second", "hello", "t0k"]
    # the persistentVolumeClaim directory outlives the pod and is shared by name
    apply(
        localkube,
        ns,
        pod_manifest(
            "reader",
            {
                "restartPolicy": "Never",
                "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": "models"}}],
                "containers": [
                    {
                        "name": "r",
                        "image": "x",
                        "command": ["cat", "/models/file"],
                        "volumeMounts": [{"name": "models", "mountPath": "/models"}],
                    }
                ],
            },
        ),
    )
    wait_for(
        lambda: pod(localkube, ns, "reader")["status"].get("phase") == "Succeeded",
        what="reader done",
    )
    assert localkube.kubectl("logs", "reader", "-n", ns).stdout.strip() == "kept"


def test_failing_init_container_fails_a_never_restart_pod(localkube: Cluster, ns: str):
    spec = {
        "restartPolicy": "Never",
        "initContainers": [{"name": "bad", "image": "x", "command": ["sh", "-c", "exit 3"]}],
        "containers": [{"name": "main", "image": "x", "command": ["echo", "never runs"]}],
    }
    apply(localkube, ns, pod_manifest("badinit", spec))
    p = wait_for(
        lambda: (p := pod(localkube, ns, "badinit"))["status"].get("phase") == "Failed" and p,
        what="Failed",
    )
    assert p["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert "running" not in p["status"]["containerStatuses"][0]["state"]


def test_readiness_exec_probe_decides_the_ready_condition(localkube: Cluster, ns: str):
    spec = {
        "containers": [
            {
                "name": "app",
                "image": "x",
                "command": ["sh", "-c", "sleep 0.5; touch ready; sleep 30"],
                "readinessProbe": {
                    "exec": {"command": ["test", "-f", "ready"]},
                    "periodSeconds": 1,
                },
            }
        ]
    }
    apply(localkube, ns, pod_manifest("probed", spec))
    wait_for(
        lambda: pod(localkube, ns, "probed")["status"].get("phase") == "Running", what="running"
    )
    assert condition(pod(localkube, ns, "probed"), "Ready")["status"] == "False"
    wait_for(
        lambda: condition(pod(localkube, ns, "probed"), "Ready")["status"] == "True", what="Ready"
    )


def test_failing_liveness_probe_restarts_the_container(localkube: Cluster, ns: str):
    spec = {
        "containers": [
            {
                "name": "app",
                "image": "x",
                "command": ["sleep", "30"],
                "livenessProbe": {
                    "tcpSocket": {"port": 9},
                    "periodSeconds": 1,
                    "failureThreshold": 2,
                },
            }
        ],
        "terminationGracePeriodSeconds": 1,
    }
    apply(localkube, ns, pod_manifest("unlive", spec))
    status = wait_for(
        lambda: (
            (s := pod(localkube, ns, "unlive")["status"].get("containerStatuses"))
            and s[0]["restartCount"] >= 1
            and s[0]
        ),
        what="a restart",
    )
    assert status["lastState"]["terminated"]["exitCode"] == 143  # SIGTERM


def test_crash_fault_gives_crash_loop_back_off(localkube: Cluster, ns: str):
    localkube.add_pod_fault(kind="crash", namespace=ns, namePrefix="crashy", after=0.2)
    try:
        apply(
            localkube,
            ns,
            pod_manifest(
                "crashy", {"containers": [{"name": "c", "image": "x", "command": ["sleep", "30"]}]}
            ),
        )
        waiting = wait_for(
            lambda: (
                (s := pod(localkube, ns, "crashy")["status"].get("containerStatuses"))
                and s[0]["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff"
                and s[0]
            ),
            what="CrashLoopBackOff",
        )
        assert waiting["lastState"]["terminated"]["exitCode"] == 137
        assert "CrashLoopBackOff" in localkube.kubectl("get", "pod", "crashy", "-n", ns).stdout
    finally:
        localkube.clear_pod_faults()


def test_exit_fault_annotation_fails_a_job(localkube: Cluster, ns: str):
    manifest = job("faulty", "echo fine", backoffLimit=0)
    manifest["spec"]["template"]["metadata"] = {
        "annotations": {"localkube.kubellm.dev/fault": "exit:code=7"}
    }
    apply(localkube, ns, manifest)
    r = localkube.kubectl("wait", "--for=condition=Failed", "job/faulty", "-n", ns, "--timeout=20s")
    assert r.returncode == 0, r.stderr
    (p,) = pods(localkube, ns, "job-name=faulty")
    assert p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 7


def test_never_ready_pods_make_a_rollout_exceed_its_progress_deadline(localkube: Cluster, ns: str):
    deploy = web_deployment(progressDeadlineSeconds=10)
    deploy["spec"]["template"]["metadata"]["annotations"] = {
        "localkube.kubellm.dev/fault": "never-ready"
    }
    apply(localkube, ns, deploy)
    r = localkube.kubectl("rollout", "status", "deploy/web", "-n", ns, "--timeout=20s")
    assert r.returncode == 1
    assert "exceeded its progress deadline" in r.stderr
    d = get(localkube, f"/apis/apps/v1/namespaces/{ns}/deployments/web")
    assert condition(d, "Progressing")["reason"] == "ProgressDeadlineExceeded"
    assert condition(d, "Available")["status"] == "False"
