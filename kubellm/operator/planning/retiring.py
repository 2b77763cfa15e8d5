"""Planning the last step: retire the children that no step of this pass wants.

Runs after every other step, on what they wanted (`Work.desired`, applied or kept):
whatever this LLM owns and is not in it goes, except that an old release is retired only
once the production Service left it and clients had ``drainDelay`` to move (a refused
release goes at once), and a training Service is the training step's (`training`).
"""

from __future__ import annotations

from kubellm.api.vocabulary import EventReason, EventType
from kubellm.operator.naming import (
    Component,
    hpa_name,
    production_service_name,
    prompts_configmap_name,
    training_job_prefix,
)
from kubellm.operator.planning.plans import Deletion
from kubellm.operator.planning.work import Work, seconds_since

__all__ = ["plan_retirements"]


def plan_retirements(w: Work, production: str | None) -> None:
    """Remove children nothing wants any more; retire old releases only after draining."""
    llm = w.llm
    prod_svc = w.observed.services.get(production_service_name(llm.name))
    promoted_at = w.status.production.promoted_at if w.status.production else None
    drained = seconds_since(promoted_at, w.now) >= w.config.drain_delay
    refused = {r.split("@")[0] for r in w.status.refused_versions}
    for dep in w.observed.deployments.values():
        if ("Deployment", dep.name) in w.desired or dep.deleting:
            continue
        if prod_svc is not None and prod_svc.version == dep.version:
            continue  # still behind the production Service: switch first, then retire
        if dep.version not in refused and not drained:
            w.out.wait(1.0)  # let clients and proxies move to the new release first
            continue
        w.out.delete.append(Deletion("Deployment", dep.name))
        w.event(EventType.NORMAL, EventReason.RETIRED, f"deleted Deployment {dep.name}")
    for svc in w.observed.services.values():
        training = svc.name.startswith(training_job_prefix(llm.name))
        if ("Service", svc.name) not in w.desired and not training:
            w.out.delete.append(Deletion("Service", svc.name))
    if production is None and hpa_name(llm.name) in w.observed.hpas:
        w.out.delete.append(Deletion("HorizontalPodAutoscaler", hpa_name(llm.name)))
    for job in w.observed.jobs.values():
        if (
            job.component == Component.LOADTEST
            and not job.finished
            and not job.deleting
            and ("Job", job.name) not in w.desired
        ):
            w.out.delete.append(Deletion("Job", job.name))  # its candidate is gone
    cm = prompts_configmap_name(llm.name)
    if cm in w.observed.configmaps and ("ConfigMap", cm) not in w.desired:
        w.out.delete.append(Deletion("ConfigMap", cm))
