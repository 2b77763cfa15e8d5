"""Pod status as the kubelet reports it: phases, backoff, exit codes, messages, faults."""

from __future__ import annotations

from localkube.controllers.faults import (
    FAULT_ANNOTATION,
    PodFault,
    PodFaults,
    parse_annotation,
)
from localkube.controllers.podstatus import (
    ContainerRecord,
    crashloop_delay,
    exit_code_of,
    pod_conditions,
    pod_phase,
    termination_message,
)
from localkube.networking import IpPool, endpoints_for


def rec(state, restarts=0):
    r = ContainerRecord("c")
    r.state = state
    r.restart_count = restarts
    return r


def term(code):
    return {"terminated": {"exitCode": code}}


def test_phase_follows_restart_policy():
    assert (
        pod_phase([rec({"waiting": {"reason": "ContainerCreating"}})], "Always", False) == "Pending"
    )
    assert pod_phase([rec({"running": {}})], "Never", False) == "Running"
    assert pod_phase([rec(term(0))], "Never", False) == "Succeeded"
    assert pod_phase([rec(term(1))], "Never", False) == "Failed"
    assert pod_phase([rec(term(1))], "OnFailure", False) == "Running"
    assert pod_phase([rec(term(0))], "OnFailure", False) == "Succeeded"
    assert pod_phase([rec(term(0))], "Always", False) == "Running"
    assert (
        pod_phase([rec({"waiting": {"reason": "CrashLoopBackOff"}}, restarts=1)], "Always", False)
        == "Running"
    )
    assert pod_phase([rec({"running": {}})], "Always", True) == "Failed"


def test_crashloop_backoff_doubles_from_ten_seconds_to_five_minutes():
    assert [crashloop_delay(n) for n in range(6)] == [10, 20, 40, 80, 160, 300]


def test_signal_deaths_report_128_plus_signal():
    assert exit_code_of(-9) == 137 and exit_code_of(-15) == 143 and exit_code_of(3) == 3


def test_termination_message_prefers_the_file_and_falls_back_to_logs_on_error():
    assert termination_message(b"done\n", b"log", 0, "File") == "done\n"
    assert termination_message(b"", b"a\nboom\n", 1, "FallbackToLogsOnError") == "a\nboom\n"
    assert termination_message(b"", b"boom\n", 0, "FallbackToLogsOnError") == ""
    assert termination_message(b"", b"boom\n", 1, "File") == ""
    assert len(termination_message(b"x" * 10000, b"", 0, "File")) == 4096


def test_condition_transition_time_moves_only_on_a_flip():
    first = pod_conditions(
        None, now="t1", initialized=True, containers_ready=False, not_ready_names=["c"]
    )
    second = pod_conditions(
        first, now="t2", initialized=True, containers_ready=False, not_ready_names=["c"]
    )
    third = pod_conditions(second, now="t3", initialized=True, containers_ready=True)
    ready = {c["type"]: c for c in third}["Ready"]
    assert {c["type"]: c for c in second}["Ready"]["lastTransitionTime"] == "t1"
    assert ready["status"] == "True" and ready["lastTransitionTime"] == "t3"


def test_faults_match_by_prefix_and_count_down():
    faults = PodFaults()
    faults.add(PodFault(kind="crash", name_prefix="web-", times=1))
    pod = {"metadata": {"name": "web-1", "namespace": "d", "labels": {}}}
    assert faults.take(pod, "c", ("crash",)) is not None
    assert faults.take(pod, "c", ("crash",)) is None
    assert faults.take({"metadata": {"name": "db-1"}}, "c", ("never-ready",)) is None


def test_fault_annotation_declares_a_fault_on_the_pod():
    fault = parse_annotation("exit:code=3,after=0.5")
    assert fault is not None and (fault.kind, fault.exit_code, fault.after) == ("exit", 3, 0.5)
    assert parse_annotation("explode") is None
    pod = {"metadata": {"name": "p", "annotations": {FAULT_ANNOTATION: "never-ready"}}}
    assert PodFaults().take(pod, "c", ("never-ready",)) is not None


def test_ip_pool_gives_distinct_loopback_addresses_and_reuses_after_release():
    pool = IpPool("127.64.0.0/10")
    a, b = pool.allocate("a"), pool.allocate("b")
    assert a != b and a.startswith("127.64.")
    assert pool.allocate("a") == a
    pool.release("a")
    assert pool.allocate("c", preferred=a) == a
    assert IpPool(aliases=False).allocate("x") == "127.0.0.1"


def test_endpoints_are_ready_pods_matching_the_selector_with_named_ports_resolved():
    svc = {"metadata": {"namespace": "d"}, "spec": {"selector": {"app": "web"}}}

    def pod(name, ready, labels=None, deleting=False):
        meta = {"name": name, "namespace": "d", "labels": labels or {"app": "web"}}
        if deleting:
            meta["deletionTimestamp"] = "now"
        return {
            "metadata": meta,
            "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8000}]}]},
            "status": {
                "podIP": f"127.64.0.{name[-1]}",
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            },
        }

    pods = [
        pod("p1", True),
        pod("p2", False),
        pod("p3", True, {"app": "db"}),
        pod("p4", True, deleting=True),
        pod("p5", True),
    ]
    assert endpoints_for(svc, {"port": 80, "targetPort": "http"}, pods) == [
        ("127.64.0.1", 8000),
        ("127.64.0.5", 8000),
    ]
