"""Which pods the demo reports as stuck, and the reason it gives."""

from __future__ import annotations

from typing import Any

from kubellm.api.timestamps import format_time
from kubellm.podhealth import pod_reason, stuck_pods

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def ts(seconds_ago: float) -> str:
    return format_time(NOW - seconds_ago)


def pod(name: str, *, age: float, ready: bool | None, phase: str = "Running", **status: Any):
    conditions = []
    if ready is not None:
        conditions.append({"type": "Ready", "status": str(ready), "lastTransitionTime": ts(age)})
    return {
        "metadata": {"name": name, "namespace": "ns", "creationTimestamp": ts(age)},
        "status": {"phase": phase, "conditions": conditions, **status},
    }


CRASHING = {
    "containerStatuses": [
        {
            "name": "operator",
            "ready": False,
            "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
            "lastState": {
                "terminated": {
                    "reason": "Error",
                    "exitCode": 1,
                    "message": "Traceback ...\nOSError: [Errno 98] Address already in use\n",
                }
            },
        }
    ]
}


def test_a_crashlooping_pod_past_the_bound_is_reported_with_its_last_error():
    stuck = stuck_pods([pod("op", age=75, ready=False, **CRASHING)], NOW, bound=60)
    assert len(stuck) == 1
    s = stuck[0]
    assert (s.namespace, s.name, s.restarts, round(s.seconds)) == ("ns", "op", 3, 75)
    assert s.reason == (
        "container operator: CrashLoopBackOff; last exit: Error, code 1: "
        "OSError: [Errno 98] Address already in use"
    )
    assert s.sentence().startswith("pod ns/op is not Ready after 75s (container operator:")


def test_ready_young_finished_and_deleted_pods_are_not_stuck():
    deleting = pod("gone", age=300, ready=False)
    deleting["metadata"]["deletionTimestamp"] = ts(5)
    pods = [
        pod("ok", age=300, ready=True),
        pod("young", age=30, ready=False, **CRASHING),
        pod("done", age=300, ready=False, phase="Succeeded"),
        pod("failed", age=300, ready=False, phase="Failed"),
        deleting,
    ]
    assert stuck_pods(pods, NOW, bound=60) == []


def test_a_pod_never_scheduled_counts_from_its_creation():
    stuck = stuck_pods([pod("pending", age=90, ready=None, phase="Pending")], NOW, bound=60)
    assert [s.name for s in stuck] == ["pending"] and stuck[0].reason == "Pending"


def test_a_running_container_that_never_turns_ready_says_so():
    running = {"containerStatuses": [{"name": "web", "ready": False, "state": {"running": {}}}]}
    assert pod_reason(pod("p", age=1, ready=False, **running)) == (
        "container web is running but not Ready"
    )


def test_the_longest_stuck_pod_comes_first():
    pods = [pod("a", age=70, ready=False), pod("b", age=200, ready=False)]
    assert [s.name for s in stuck_pods(pods, NOW, bound=60)] == ["b", "a"]


def test_the_demo_stops_on_a_refused_candidate_with_the_gate_verdict():
    from kubellm.demo import refusal

    verdict = "version 1: error rate 14.29% exceeds maxErrorRate=0.01"
    status = {
        "conditions": [
            {"type": "CandidateReady", "status": "False", "reason": "CandidateRefused"},
            {
                "type": "LoadTestPassed",
                "status": "False",
                "reason": "LoadTestFailed",
                "message": verdict,
            },
        ]
    }
    assert refusal(status) == f"the load test refused the candidate: {verdict}"
    waiting = {
        "conditions": [{"type": "CandidateReady", "status": "False", "reason": "NoCandidate"}]
    }
    assert refusal(waiting) is None and refusal({}) is None
