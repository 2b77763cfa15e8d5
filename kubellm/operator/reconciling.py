"""One idempotent reconcile per LLM: read, observe, plan, execute, write status once.

Every trigger (kopf create/update/resume, the polling timer, a registry webhook) ends up in
`Reconciler.reconcile`, serialised per object by a lock so two triggers never act on the
same LLM at once. The reconciler re-reads the LLM first: a trigger's copy may be older
than the status the previous reconcile wrote.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from kubellm.api.resource import InvalidSpec, parse_llm
from kubellm.api.status import LLMStatus
from kubellm.gateway.demand import LLMDemand
from kubellm.operator.config import OperatorConfig
from kubellm.operator.executing import Ref, execute, write_outcome
from kubellm.operator.kube import KubeApi
from kubellm.operator.metrics import LLMS, RECONCILE_SECONDS, RECONCILES, ROLLOUTS
from kubellm.operator.planning import plan, plan_invalid
from kubellm.operator.reading import observe
from kubellm.registry import CircuitBreaker, Registry, TrackingUriRefused

__all__ = ["TRACKING_REFUSED", "Outcome", "Reconciler"]

#: condition reason of an LLM whose tracking URI the operator's configuration does not allow
TRACKING_REFUSED = "TrackingUriNotAllowed"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    requeue_after: float | None = None
    invalid: bool = False
    gone: bool = False
    message: str = ""
    phase: str | None = None


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
        self._locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()
        self._pending: dict[tuple[str, str], threading.Timer] = {}
        #: registered model name -> LLMs using it (for webhooks)
        self.by_model: defaultdict[str, set[tuple[str, str]]] = defaultdict(set)

    def _guarded_registry(self, uri: str) -> Registry:
        """The operator's client of one tracking server: allowed URIs only, one breaker."""
        breaker = CircuitBreaker(self.config.breaker_threshold, self.config.breaker_cooldown)
        return Registry(uri, access=self._access, breaker=breaker)

    def registry(self, uri: str) -> Registry:
        with self._guard:
            if uri not in self._registries:
                self._registries[uri] = self._registry_factory(uri)
            return self._registries[uri]

    def _lock(self, namespace: str, name: str) -> threading.Lock:
        with self._guard:
            return self._locks[(namespace, name)]

    def forget(self, namespace: str, name: str) -> None:
        with self._guard:
            self._locks.pop((namespace, name), None)
            for refs in self.by_model.values():
                refs.discard((namespace, name))
            LLMS.set(sum(1 for _ in self._locks))

    def llms_for_model(self, model: str) -> list[tuple[str, str]]:
        with self._guard:
            return sorted(self.by_model.get(model, set()))

    def reconcile(self, namespace: str, name: str, trigger: str = "event") -> Outcome:
        """Reconcile one LLM now.

        kopf's change handlers turn a "not yet" outcome into a TemporaryError and kopf
        retries them; other triggers (a webhook, the polling timer, a requeue) have nobody
        to retry them, so the reconciler schedules the follow-up itself.
        """
        started = time.perf_counter()
        result = "error"
        try:
            with self._lock(namespace, name):
                outcome = self._reconcile(namespace, name)
            result = (
                "invalid"
                if outcome.invalid
                else ("requeue" if outcome.requeue_after is not None else "steady")
            )
            if trigger != "change" and outcome.requeue_after is not None:
                self._requeue(namespace, name, outcome.requeue_after)
            return outcome
        finally:
            RECONCILES.labels(trigger, result).inc()
            RECONCILE_SECONDS.observe(time.perf_counter() - started)

    def _requeue(self, namespace: str, name: str, delay: float) -> None:
        key = (namespace, name)
        with self._guard:
            if key in self._pending:
                return  # one follow-up per object is enough: it re-reads everything

            def fire() -> None:
                with self._guard:
                    self._pending.pop(key, None)
                try:
                    self.reconcile(namespace, name, "requeue")
                except Exception:  # the timer and kopf's handlers will try again
                    log.exception("requeued reconcile of %s/%s failed", namespace, name)

            timer = threading.Timer(delay, fire)
            timer.daemon = True
            self._pending[key] = timer
            timer.start()

    def close(self) -> None:
        with self._guard:
            pending, self._pending = list(self._pending.values()), {}
        for timer in pending:
            timer.cancel()

    def _reconcile(self, namespace: str, name: str) -> Outcome:
        raw = self.api.get("LLM", namespace, name)
        if raw is None or raw["metadata"].get("deletionTimestamp"):
            self.forget(namespace, name)
            return Outcome(gone=True)
        raw_status: dict[str, Any] = dict(raw.get("status") or {})
        generation = int(raw["metadata"].get("generation") or 1)
        try:
            llm = parse_llm(raw)
        except InvalidSpec as exc:
            status = LLMStatus.model_validate(raw_status)
            invalid = plan_invalid(status, generation, exc.errors)
            ref = Ref(name, namespace, raw["metadata"].get("uid"))
            write_outcome(self.api, ref, invalid, raw_status)
            return Outcome(invalid=True, message=str(exc), phase="Invalid")
        with self._guard:
            self.by_model[llm.spec.model.registered_model].add((namespace, name))
            LLMS.set(len(self._locks))
        uri = llm.spec.mlflow.tracking_uri or self.config.tracking_uri
        if not uri:
            errors = [
                "spec.mlflow.trackingUri: required (the operator has no default "
                "tracking URI: set KUBELLM_MLFLOW_TRACKING_URI or the chart's mlflow value)"
            ]
            invalid = plan_invalid(llm.status, generation, errors)
            write_outcome(self.api, Ref(name, namespace, llm.uid), invalid, raw_status)
            return Outcome(invalid=True, message=errors[0], phase="Invalid")
        try:
            self._access.check(uri)
        except TrackingUriRefused as exc:
            refused = plan_invalid(
                llm.status, generation, [f"spec.mlflow.trackingUri: {exc}"], TRACKING_REFUSED
            )
            write_outcome(self.api, Ref(name, namespace, llm.uid), refused, raw_status)
            return Outcome(invalid=True, message=str(exc), phase="Invalid")
        registry = self.registry(uri)
        observed = observe(self.api, llm, lambda: registry)
        if self.demand is not None:
            observed = replace(observed, demand=self.demand(namespace, name))
        the_plan = plan(llm, observed, self.config)
        execute(self.api, registry, llm, observed, the_plan, raw_status)
        for event in the_plan.events:
            if event.reason in ("Promoted", "Refused"):
                ROLLOUTS.labels("promoted" if event.reason == "Promoted" else "refused").inc()
        phase = the_plan.status.phase.value if the_plan.status.phase else None
        return Outcome(
            requeue_after=the_plan.requeue_after,
            message=the_plan.status.message or "",
            phase=phase,
        )
