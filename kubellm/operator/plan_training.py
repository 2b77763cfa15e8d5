"""Planning step 1: the training Job of the LLM's current training spec, and `Trained`.

A Job is named by the hash of the training section, so only a change of what training
depends on starts a new one; a superseded Job is deleted. A checkpoint claim
(spec.training.checkpoints.size) is created with the Job it serves, and never patched.
"""

from __future__ import annotations

from kubellm.api.status import TrainingStatus
from kubellm.operator.builders import build_training_job, training_hash
from kubellm.operator.naming import training_job_name
from kubellm.operator.planning import Deletion, Event, F, T, Work
from kubellm.operator.verdicts import number, parse_training_message

__all__ = ["plan_training"]


def plan_training(w: Work) -> str:
    """Desired training Job and the Trained condition; returns the training state."""
    llm = w.llm
    training = llm.spec.training
    if training is None:
        w.condition(
            "Trained",
            T,
            "NoTrainingRequested",
            "spec.training is not set: versions come from the registry",
        )
        return "None"
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
        if other.component == "training" and other.name != name and not other.deleting:
            w.out.delete.append(Deletion("Job", other.name))  # superseded by a spec change
            if not other.finished:
                w.out.events.append(
                    Event(
                        "Normal",
                        "TrainingSuperseded",
                        f"stopped {other.name}: spec.training changed",
                    )
                )
    for svc in w.observed.services.values():
        if svc.name.startswith(f"{llm.name}-train-") and svc.name != name:
            w.out.delete.append(Deletion("Service", svc.name))
    state: str
    if job is None and status.state in ("Succeeded", "Failed"):
        state = status.state  # finished earlier; its Job was cleaned up since
    elif job is None:
        for manifest in build_training_job(llm, w.config):
            w.want(manifest)
        if status.state is None:
            w.out.events.append(Event("Normal", "TrainingStarted", f"created Job {name}"))
        state = "Pending"
        w.out.wait()
    else:
        for manifest in build_training_job(llm, w.config):
            w.desired_names.add((manifest["kind"], manifest["metadata"]["name"]))
            if manifest["kind"] == "Service":
                w.want(manifest)
        status.started_at = job.start_time
        if job.complete:
            state = "Succeeded"
            summary = parse_training_message(job.message)
            status.model_version = (
                str(
                    summary.get("model_version")
                    or summary.get("modelVersion")
                    or status.model_version
                    or ""
                )
                or None
            )
            status.run_id = summary.get("run_id") or summary.get("runId") or status.run_id
            status.eval_loss = number(summary, "eval_loss", "evalLoss") or status.eval_loss
            status.loss = number(summary, "train_loss", "trainLoss", "loss") or status.loss
            status.finished_at = job.completion_time
            status.message = None
        elif job.failed_final:
            state = "Failed"
            summary = parse_training_message(job.message)
            status.message = str(summary.get("error") or job.reason or "training Job failed")
            status.finished_at = job.completion_time
        else:
            state = "Running"
            if job.progress is not None:
                status.step = job.progress.step
                status.total_steps = job.progress.total
                status.loss = job.progress.loss
            w.out.wait(3.0)
    status.state = state
    status.job = name
    w.status["training"] = status
    if state == "Succeeded":
        version = status.model_version
        w.condition(
            "Trained",
            T,
            "TrainingSucceeded",
            f"{name} registered version {version}" if version else f"{name} succeeded",
        )
    elif state == "Failed":
        w.condition("Trained", F, "TrainingFailed", f"{name}: {status.message}")
    elif state == "Running":
        progress = (
            f"step {status.step}/{status.total_steps or '?'}, loss {status.loss:.4f}"
            if status.step is not None and status.loss is not None
            else "starting"
        )
        w.condition("Trained", F, "TrainingRunning", f"{name}: {progress}")
    else:
        w.condition("Trained", F, "TrainingPending", f"{name} created")
    return state
