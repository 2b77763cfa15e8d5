"""Planning step 1: the training Job of the LLM's current training spec, and `Trained`.

A Job is named by the hash of the training section, so only a change of what training
depends on starts a new one; a superseded Job is deleted. A checkpoint claim
(spec.training.checkpoints.size) is created with the Job it serves, and never patched.
"""

from __future__ import annotations

from kubellm.api.status import TrainingStatus
from kubellm.api.vocabulary import ConditionType, EventReason, EventType, Reason, TrainingState
from kubellm.operator.builders import build_training_job, training_hash
from kubellm.operator.naming import Component, training_job_name, training_job_prefix
from kubellm.operator.planning.plans import Deletion
from kubellm.operator.planning.work import F, T, Work
from kubellm.operator.verdicts import parse_training_message

__all__ = ["plan_training"]


def plan_training(w: Work) -> TrainingState | None:
    """Desired training Job and the Trained condition; returns the training state (None:
    the LLM trains nothing)."""
    llm = w.llm
    training = llm.spec.training
    if training is None:
        w.condition(
            ConditionType.TRAINED,
            T,
            Reason.NO_TRAINING_REQUESTED,
            "spec.training is not set: versions come from the registry",
        )
        return None
    thash = training_hash(llm)
    name = training_job_name(llm.name, thash)
    prev = llm.status.training
    status = (
        prev.model_copy()
        if prev is not None and prev.spec_hash == thash
        else TrainingStatus(spec_hash=thash, job=name)
    )
    job = w.observed.jobs.get(name)
    for other in w.observed.jobs.values():
        if other.component == Component.TRAINING and other.name != name and not other.deleting:
            w.out.delete.append(Deletion("Job", other.name))  # superseded by a spec change
            if not other.finished:
                w.event(
                    EventType.NORMAL,
                    EventReason.TRAINING_SUPERSEDED,
                    f"stopped {other.name}: spec.training changed",
                )
    for svc in w.observed.services.values():
        if svc.name.startswith(training_job_prefix(llm.name)) and svc.name != name:
            w.out.delete.append(Deletion("Service", svc.name))
    state: TrainingState
    if job is None and status.state in (TrainingState.SUCCEEDED, TrainingState.FAILED):
        state = status.state  # finished earlier; its Job was cleaned up since
    elif job is None:
        for manifest in build_training_job(llm, w.config):
            w.want(manifest)
        if status.state is None:
            w.event(EventType.NORMAL, EventReason.TRAINING_STARTED, f"created Job {name}")
        state = TrainingState.PENDING
        w.out.wait()
    else:
        for manifest in build_training_job(llm, w.config):
            if manifest["kind"] == "Service":
                w.want(manifest)
            else:  # the Job (and its checkpoint claim) exist: never patched, never re-created
                w.keep(manifest["kind"], manifest["metadata"]["name"])
        status.started_at = job.start_time
        if job.complete:
            state = TrainingState.SUCCEEDED
            summary = parse_training_message(job.message)
            status.model_version = summary.model_version or status.model_version
            status.run_id = summary.run_id or status.run_id
            status.eval_loss = summary.eval_loss or status.eval_loss
            status.loss = summary.train_loss or status.loss
            status.finished_at = job.completion_time
            status.message = None
        elif job.failed_final:
            state = TrainingState.FAILED
            summary = parse_training_message(job.message)
            status.message = summary.error or job.reason or "training Job failed"
            status.finished_at = job.completion_time
        else:
            state = TrainingState.RUNNING
            if job.progress is not None:
                status.step = job.progress.step
                status.total_steps = job.progress.total
                status.loss = job.progress.loss
            w.out.wait(3.0)
    status.state = state
    status.job = name
    w.status.training = status
    if state is TrainingState.SUCCEEDED:
        version = status.model_version
        w.condition(
            ConditionType.TRAINED,
            T,
            Reason.TRAINING_SUCCEEDED,
            f"{name} registered version {version}" if version else f"{name} succeeded",
        )
    elif state is TrainingState.FAILED:
        w.condition(ConditionType.TRAINED, F, Reason.TRAINING_FAILED, f"{name}: {status.message}")
    elif state is TrainingState.RUNNING:
        progress = (
            f"step {status.step}/{status.total_steps or '?'}, loss {status.loss:.4f}"
            if status.step is not None and status.loss is not None
            else "starting"
        )
        w.condition(ConditionType.TRAINED, F, Reason.TRAINING_RUNNING, f"{name}: {progress}")
    else:
        w.condition(ConditionType.TRAINED, F, Reason.TRAINING_PENDING, f"{name} created")
    return state
