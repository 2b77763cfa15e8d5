"""Planning step: how many replicas the production release runs, and where the gateway
sends its traffic.

The HorizontalPodAutoscaler owns the replica count inside its range, but it cannot scale
from or to zero (a target at zero replicas disables it). With ``spec.serving.replicas.min:
0`` the operator switches between the two states itself, from the demand the gateway
reports (`kubellm.gateway.demand`):

- serving: the HPA exists with ``minReplicas >= 1``; after ``scaleToZeroAfter`` with no
  request in flight, none held and none started, the operator deletes the HPA and scales the
  Deployment to 0;
- at zero: no HPA; the first request the gateway holds makes the operator scale the
  Deployment to 1 and create the HPA again; the gateway forwards the held requests once the
  pod is ready and reports how long that took (copied into ``status.serving``).

Without a demand report (no gateway configured, or none answered lately) nothing is scaled
to zero, and a release at zero is started again: an unknown demand is served, never left
waiting. The routes (`status.serving.routes`) are the gateway's instructions, and the
operator is their one writer: the whole traffic goes to the production Service, except
during a canary step (`stages.Stage.CANARY`), which gives the candidate Service its share.
"""

from __future__ import annotations

from kubellm.api.spec import duration_seconds
from kubellm.api.status import RouteStatus, ServingStatus
from kubellm.api.vocabulary import EventReason, EventType
from kubellm.operator.builders import build_hpa
from kubellm.operator.naming import (
    candidate_service_name,
    deployment_name,
    hpa_name,
    production_service_name,
)
from kubellm.operator.planning.plans import Deletion, Scale
from kubellm.operator.planning.work import Work

__all__ = ["initial_replicas", "plan_serving"]

#: how soon to look again after scaling (the status follows the Deployment)
SETTLE_SECONDS = 2.0


def initial_replicas(w: Work) -> int:
    """Replicas a new serving Deployment starts with: at least one, even with min 0 (a
    candidate is load-tested, a restored release must serve)."""
    return max(1, w.llm.spec.serving.replicas.min)


def _routes(w: Work, serving_version: str, canary: tuple[str, int] | None) -> list[RouteStatus]:
    """The gateway's routes: production takes what the canary (candidate version, percent)
    leaves; a release with no share is left out."""
    llm = w.llm
    share = canary[1] if canary is not None else 0
    out = []
    if share < 100:
        out.append(
            RouteStatus(
                version=serving_version,
                service=production_service_name(llm.name),
                weight=100 - share,
            )
        )
    if canary is not None and share > 0:
        out.append(
            RouteStatus(version=canary[0], service=candidate_service_name(llm.name), weight=share)
        )
    return out


def plan_serving(
    w: Work, production: str, serving_version: str, canary: tuple[str, int] | None = None
) -> bool:
    """Scale the production release (HPA range, zero, or from zero) and record routes.

    ``serving_version`` is the release the production Service selects now (it differs from
    ``production`` while a rollback waits for its release to start); ``canary`` is the
    candidate's version and share during a canary step. Returns True while the release is
    scaled to zero or starting from zero by the operator's choice.
    """
    llm = w.llm
    spec = llm.spec.serving
    dep_name = deployment_name(llm.name, production)
    dep = w.observed.deployments.get(dep_name)
    demand = w.observed.demand
    previous = llm.status.serving
    scales_to_zero = spec.replicas.min == 0 and spec.scale_to_zero_after is not None
    at_zero = dep is not None and dep.desired_replicas == 0
    hpa_exists = hpa_name(llm.name) in w.observed.hpas
    sleeping = False

    if dep is None:
        w.want(build_hpa(llm, production))
    elif at_zero:
        wake = not scales_to_zero or demand is None or demand.held > 0 or demand.inflight > 0
        if wake:
            w.out.scale.append(Scale(dep_name, initial_replicas(w)))
            w.want(build_hpa(llm, production))
            why = (
                f"{demand.held} request(s) held by the gateway"
                if demand is not None and demand.held
                else "no demand report from the gateway"
                if demand is None
                else "scale to zero is off"
            )
            w.event(
                EventType.NORMAL,
                EventReason.SCALING_FROM_ZERO,
                f"starting {dep_name} from zero: {why}",
            )
            w.out.wait(SETTLE_SECONDS)
            sleeping = scales_to_zero
        else:
            sleeping = True
            if hpa_exists:
                w.out.delete.append(Deletion("HorizontalPodAutoscaler", hpa_name(llm.name)))
    else:
        idle_for = None if demand is None else demand.idle_seconds
        after = duration_seconds(spec.scale_to_zero_after) if spec.scale_to_zero_after else 0.0
        quiet = demand is not None and demand.held == 0 and demand.inflight == 0
        if scales_to_zero and quiet and idle_for is not None and idle_for >= after:
            w.out.scale.append(Scale(dep_name, 0))
            if hpa_exists:
                w.out.delete.append(Deletion("HorizontalPodAutoscaler", hpa_name(llm.name)))
            w.event(
                EventType.NORMAL,
                EventReason.SCALED_TO_ZERO,
                f"no request for {idle_for:.0f}s (scaleToZeroAfter {spec.scale_to_zero_after}):"
                f" scaled {dep_name} to zero",
            )
            w.out.wait(SETTLE_SECONDS)
            sleeping = True
        else:
            w.want(build_hpa(llm, production))
            # still starting from zero: the previous pass woke it, no pod is ready yet
            sleeping = bool(previous and previous.scaled_to_zero and not dep.available)
            if scales_to_zero and quiet and idle_for is not None:
                remaining = after - idle_for
                if remaining < w.config.poll_interval:  # the timer would come too late
                    w.out.wait(max(remaining, 0.5))

    cold = previous.last_cold_start_seconds if previous else None
    cold_at = previous.last_cold_start_at if previous else None
    if demand is not None and demand.last_cold_start_seconds is not None:
        cold, cold_at = demand.last_cold_start_seconds, demand.last_cold_start_at
    w.status.serving = ServingStatus(
        replicas=dep.ready_replicas if dep is not None else 0,
        scaled_to_zero=sleeping,
        last_cold_start_seconds=cold,
        last_cold_start_at=cold_at,
        routes=_routes(w, serving_version, canary),
    )
    return sleeping
