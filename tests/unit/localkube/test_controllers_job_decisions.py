"""Job controller decisions: parallelism, completions, Indexed, backoff, deadline, TTL."""

from __future__ import annotations

import datetime as dt

from localkube.controllers.jobstatus import decide, format_indexes, retry_delay

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def job(**spec):
    base = {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c"}]}}}
    base.update(spec)
    return {"metadata": {"name": "j", "namespace": "d", "uid": "u"}, "spec": base, "status": {}}


def pod(name, phase, index=None, finished=None, restarts=0, deleting=False):
    meta = {"name": name, "creationTimestamp": "2026-01-01T11:59:00Z"}
    if index is not None:
        meta["annotations"] = {"batch.kubernetes.io/job-completion-index": str(index)}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    state = (
        {"terminated": {"finishedAt": finished or "2026-01-01T11:59:30Z"}}
        if phase in ("Succeeded", "Failed")
        else {}
    )
    return {
        "metadata": meta,
        "status": {
            "phase": phase,
            "containerStatuses": [{"restartCount": restarts, "state": state}],
        },
    }


def conds(d):
    return {c["type"]: c["reason"] for c in d.status.get("conditions", [])}


def test_creates_up_to_parallelism_limited_by_remaining_completions():
    d = decide(
        job(parallelism=3, completions=5),
        [pod("a", "Succeeded"), pod("b", "Succeeded"), pod("c", "Succeeded")],
        NOW,
    )
    assert d.create == [None, None]
    assert d.status["succeeded"] == 3 and d.status["active"] == 2


def test_completion_sets_success_criteria_then_complete():
    d = decide(job(completions=1), [pod("a", "Succeeded")], NOW)
    assert conds(d) == {
        "SuccessCriteriaMet": "CompletionsReached",
        "Complete": "CompletionsReached",
    }
    assert d.status["completionTime"] and not d.create
    assert ("Normal", "Completed", "Job completed") in d.events


def test_failures_beyond_backoff_limit_fail_the_job_and_kill_active_pods():
    pods = [pod("a", "Failed"), pod("b", "Failed"), pod("c", "Running")]
    d = decide(job(backoffLimit=1, parallelism=2, completions=2), pods, NOW)
    assert conds(d)["Failed"] == "BackoffLimitExceeded"
    assert "FailureTarget" in conds(d)
    assert d.delete == ["c"] and d.status["failed"] == 2 and "active" not in d.status


def test_on_failure_restarts_count_against_backoff_limit():
    spec = job(backoffLimit=2)
    spec["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    assert "Failed" not in conds(decide(spec, [pod("a", "Running", restarts=2)], NOW))
    assert (
        conds(decide(spec, [pod("a", "Running", restarts=3)], NOW))["Failed"]
        == "BackoffLimitExceeded"
    )


def test_retry_after_failure_waits_the_exponential_delay():
    assert [retry_delay(n) for n in (1, 2, 3)] == [10.0, 20.0, 40.0]
    assert retry_delay(20) == 360.0
    failed = [pod("a", "Failed", finished="2026-01-01T11:59:55Z")]
    d = decide(job(backoffLimit=6), failed, NOW)  # 5 s after the failure, delay 10 s
    assert d.create == [] and 4.9 < (d.requeue or 0) <= 5.0
    d = decide(job(backoffLimit=6), failed, NOW, scale=0.1)  # 1 s delay has passed
    assert d.create == [None]


def test_active_deadline_fails_the_job():
    j = job(activeDeadlineSeconds=30)
    j["status"]["startTime"] = "2026-01-01T11:59:00Z"
    d = decide(j, [pod("a", "Running")], NOW)
    assert conds(d)["Failed"] == "DeadlineExceeded" and d.delete == ["a"]


def test_indexed_job_creates_missing_indexes_and_reports_completed_ones():
    pods = [pod("a", "Succeeded", index=0), pod("b", "Running", index=1)]
    d = decide(job(completionMode="Indexed", completions=4, parallelism=2), pods, NOW)
    assert d.create == [2]
    assert d.status["completedIndexes"] == "0"
    assert format_indexes({0, 1, 2, 4, 6, 7}) == "0-2,4,6-7"


def test_suspended_job_deletes_active_pods_and_says_so():
    d = decide(job(suspend=True), [pod("a", "Running")], NOW)
    assert d.delete == ["a"] and conds(d) == {"Suspended": "JobSuspended"}


def test_ttl_after_finished_deletes_the_job_once_elapsed():
    j = job(ttlSecondsAfterFinished=10)
    j["status"] = {
        "completionTime": "2026-01-01T11:59:00Z",
        "conditions": [
            {"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T11:59:00Z"}
        ],
    }
    assert decide(j, [], NOW).delete_job
    j["spec"]["ttlSecondsAfterFinished"] = 600
    d = decide(j, [], NOW)
    assert not d.delete_job and d.requeue == 540


def test_terminating_pods_are_not_counted_active():
    d = decide(job(parallelism=1), [pod("a", "Running", deleting=True)], NOW)
    assert d.status["terminating"] == 1 and d.create == [None]
