"""Planning the production release: its Deployment, the production Service, its scaling
(`scaling`), ``status.production`` and the summary condition ``Ready``.

Production is the version this operator verified (`trust`) or promoted in this pass
(`stages.Rollout.production_after`). Its Deployment is wanted here, also when the rollout
promoted it in this pass (the candidate's Deployment then serves as production's).
"""

from __future__ import annotations

from kubellm.api.status import ProductionStatus, WatchStatus
from kubellm.api.vocabulary import ConditionType, Reason
from kubellm.operator.builders import build_production_service, build_serving_deployment
from kubellm.operator.naming import deployment_name, production_service_name
from kubellm.operator.planning.scaling import initial_replicas, plan_serving
from kubellm.operator.planning.stages import Rollout
from kubellm.operator.planning.work import F, T, Work, stamp

__all__ = ["plan_production"]


def _serving_version(w: Work, production: str) -> str:
    """The release the production Service selects: production, except while a rollback
    to a retired release waits for it to start (no window without pods)."""
    llm = w.llm
    dep = w.observed.deployments.get(deployment_name(llm.name, production))
    svc = w.observed.services.get(production_service_name(llm.name))
    if (dep is None or not dep.available) and svc is not None and svc.version != production:
        running = w.observed.deployments.get(deployment_name(llm.name, svc.version or ""))
        if running is not None and running.available:
            return running.version or production
    return production


def plan_production(w: Work, rollout: Rollout, watch: WatchStatus | None = None) -> None:
    """``watch``: the post-promotion watch's record after this pass (`watching`)."""
    llm = w.llm
    production = rollout.production_after
    if production is None:
        w.condition(
            ConditionType.READY,
            F,
            Reason.NO_PRODUCTION_VERSION,
            f"no version behind alias {llm.spec.rollout.production_alias!r} yet",
        )
        return
    dep_name = deployment_name(llm.name, production)
    dep = w.observed.deployments.get(dep_name)
    svc_name = production_service_name(llm.name)
    svc = w.observed.services.get(svc_name)
    serving = _serving_version(w, production)
    w.want(build_serving_deployment(llm, production, w.config, replicas=initial_replicas(w)))
    w.want(build_production_service(llm, serving, w.config))
    weight = rollout.canary_weight
    canary = (rollout.version, weight) if rollout.version and weight is not None else None
    scaled_to_zero = plan_serving(w, production, serving, canary)
    prev = llm.status.production
    moved = rollout.promoted is not None or prev is None or prev.version != production
    w.status.production = ProductionStatus(
        version=production,
        deployment=dep_name,
        endpoint=f"http://{svc_name}.{llm.namespace}.svc:{w.config.serving_port}",
        address=w.service_url(svc_name),
        promoted_at=stamp(w.now) if moved or prev is None else prev.promoted_at,
        watch=watch,
    )
    selected = svc is not None and svc.version == production
    # an available production whose Service this plan switches to it (a promotion, a
    # rollback) serves once the plan is carried out: Ready does not flap on the switch
    switching = svc is not None and serving == production
    if dep is not None and dep.available and (selected or switching):
        w.condition(
            ConditionType.READY,
            T,
            Reason.PRODUCTION_SERVING,
            f"version {production} serves at {svc_name} "
            f"({dep.available_replicas} available replica(s))",
        )
    elif scaled_to_zero and selected:
        w.condition(
            ConditionType.READY,
            T,
            Reason.SCALED_TO_ZERO,
            f"version {production} is scaled to zero; the gateway holds requests while a "
            "replica starts",
        )
    else:
        meanwhile = f"; version {serving} serves meanwhile" if serving != production else ""
        w.condition(
            ConditionType.READY,
            F,
            Reason.PRODUCTION_STARTING,
            f"version {production}: waiting for {dep_name} and Service {svc_name}{meanwhile}",
        )
        w.out.wait()
