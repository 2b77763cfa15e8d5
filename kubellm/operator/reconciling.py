"""One idempotent reconcile per LLM: read, observe, plan, execute, write status once.

`Reconciler.reconcile` is a blocking call that kopf schedules (see `handlers`): each LLM's
reconcile daemon runs it, one at a time per LLM, on every trigger (a change, a registry
webhook, the gateways' demand, a requeue, the polling interval). This module decides
nothing about when: it reports what the next visit needs (`Outcome.requeue_after`). The
reconciler re-reads the LLM first: a trigger's copy may be older than the status the
previous reconcile wrote.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from kubellm.api.resource import InvalidSpec, parse_llm
from kubellm.api.status import LLMStatus
from kubellm.gateway.demand import LLMDemand
from kubellm.operator.config import OperatorConfig
from kubellm.operator.executing import Ref, execute, write_outcome
from kubellm.operator.kube import KubeApi
from kubellm.operator.metrics import RECONCILE_SECONDS, RECONCILES, ROLLBACKS, ROLLOUTS
from kubellm.operator.planning import plan, plan_invalid
from kubellm.operator.reading import observe
from kubellm.operator.sampling import read_live, read_watch_live
from kubellm.registry import CircuitBreaker, Registry, TrackingUriRefused

__all__ = ["TRACKING_REFUSED", "Outcome", "Reconciler"]

#: condition reason of an LLM whose tracking URI the operator's configuration does not allow
TRACKING_REFUSED = "TrackingUriNotAllowed"


@dataclass(frozen=True)
class Outcome:
    #: look again after this many seconds (something is in progress); None: steady
    requeue_after: float | None = None
    #: the spec can never work as it is (the status says why); only a change helps
    invalid: bool = False
    message: str = ""
    #: whether this reconcile wrote the LLM's status (False: it was already current)
    status_written: bool = False


class Reconciler:
    def __init__(
        self,
        api: KubeApi,
        config: OperatorConfig,
        registry_factory: Callable[[str], Registry] | None = None,
        demand: Callable[[str, str], LLMDemand | None] | None = None,
    ) -> None:
        self.api = api
        self.config = config
        self._access = config.tracking_access()
        self._registry_factory = registry_factory or self._guarded_registry
        #: the gateways' demand of an LLM (namespace, name), see `demanding`; None: unknown
        self.demand = demand
        self._registries: dict[str, Registry] = {}
        self._registries_lock = threading.Lock()  # reconciles of several LLMs share the cache

    def _guarded_registry(self, uri: str) -> Registry:
        """The operator's client of one tracking server: allowed URIs only, one breaker."""
        breaker = CircuitBreaker(self.config.breaker_threshold, self.config.breaker_cooldown)
        return Registry(uri, access=self._access, breaker=breaker)

    def registry(self, uri: str) -> Registry:
        with self._registries_lock:
            if uri not in self._registries:
                self._registries[uri] = self._registry_factory(uri)
            return self._registries[uri]

    def reconcile(self, namespace: str, name: str, trigger: str = "change") -> Outcome:
        """Reconcile one LLM now (blocking); ``trigger`` labels the metrics only.

        The caller runs at most one reconcile of an LLM at a time and comes back after
        ``requeue_after``; an exception (the API server or the registry failing) is the
        caller's to log and retry.
        """
        started = time.perf_counter()
        result = "error"
        try:
            outcome = self._reconcile(namespace, name)
            result = (
                "invalid"
                if outcome.invalid
                else ("requeue" if outcome.requeue_after is not None else "steady")
            )
            return outcome
        finally:
            RECONCILES.labels(trigger, result).inc()
            RECONCILE_SECONDS.observe(time.perf_counter() - started)

    def _reconcile(self, namespace: str, name: str) -> Outcome:
        raw = self.api.get("LLM", namespace, name)
        if raw is None or raw["metadata"].get("deletionTimestamp"):
            return Outcome()  # going: its children go with it (ownerReferences)
        raw_status: dict[str, Any] = dict(raw.get("status") or {})
        generation = int(raw["metadata"].get("generation") or 1)
        try:
            llm = parse_llm(raw)
        except InvalidSpec as exc:
            status = LLMStatus.model_validate(raw_status)
            invalid = plan_invalid(status, generation, exc.errors)
            ref = Ref(name, namespace, raw["metadata"].get("uid"))
            written = write_outcome(self.api, ref, invalid, raw_status)
            return Outcome(invalid=True, message=str(exc), status_written=written)
        uri = llm.spec.mlflow.tracking_uri or self.config.tracking_uri
        if not uri:
            errors = [
                "spec.mlflow.trackingUri: required (the operator has no default "
                "tracking URI: set KUBELLM_MLFLOW_TRACKING_URI or the chart's mlflow value)"
            ]
            invalid = plan_invalid(llm.status, generation, errors)
            written = write_outcome(self.api, Ref(name, namespace, llm.uid), invalid, raw_status)
            return Outcome(invalid=True, message=errors[0], status_written=written)
        try:
            self._access.check(uri)
        except TrackingUriRefused as exc:
            refused = plan_invalid(
                llm.status, generation, [f"spec.mlflow.trackingUri: {exc}"], TRACKING_REFUSED
            )
            written = write_outcome(self.api, Ref(name, namespace, llm.uid), refused, raw_status)
            return Outcome(invalid=True, message=str(exc), status_written=written)
        registry = self.registry(uri)
        observed = observe(self.api, llm, lambda: registry)
        if self.demand is not None:
            observed = replace(observed, demand=self.demand(namespace, name))
        live = read_live(self.config, llm)  # None unless a canary step is in progress
        if live is not None:
            observed = replace(observed, live=live)
        watched = read_watch_live(self.config, llm)  # None unless production is watched
        if watched is not None:
            observed = replace(observed, watch_live=watched)
        the_plan = plan(llm, observed, self.config)
        written = execute(self.api, registry, llm, observed, the_plan, raw_status)
        if the_plan.verdict is not None:  # the decision, once: not the Events' reasons
            ROLLOUTS.labels(str(the_plan.verdict)).inc()
        if the_plan.rollback is not None:
            ROLLBACKS.labels(str(the_plan.rollback)).inc()
        return Outcome(
            requeue_after=the_plan.requeue_after,
            message=the_plan.status.message or "",
            status_written=written,
        )
