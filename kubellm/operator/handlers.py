"""kopf glue: kopf decides when an LLM is reconciled; the reconciler decides what to do.

One reconcile daemon per LLM (`@kopf.daemon`) is the only caller of `Reconciler.reconcile`
for that LLM. kopf starts it when it first sees the LLM (created, or found at start-up),
stops it when the LLM goes (after a reconcile in flight has ended, before the finalizer is
released) or while peering pauses this replica: two reconciles of one LLM never overlap,
and nothing of ours keeps locks, timers or a table of objects. Between two reconciles the
daemon waits for the first of: a nudge in its inbox, the requeue the last outcome asked
for, the polling interval (the fallback for registry changes no webhook reported, and for
drift of the children). Nudges come from:

- kopf's change handlers: the LLM created, changed, or found at start-up (the daemon's
  first reconcile waits for this, so that it sees the object as kopf settled it);
- a registry webhook: kopf's index ``llms_by_model`` (registered model -> the inboxes of
  the LLMs that use it), kept from kopf's own watch, so the webhook asks no API server;
- the gateways' demand (`demanding.follow_demand`), through kopf's index ``llm_inboxes``.

Why a daemon consuming an in-memory inbox, not change handlers nudged by patching an
annotation (the other way kopf offers):

- coming back later is the normal life of an LLM (a Job runs, a pod starts). A change
  handler can only ask for that by raising `kopf.TemporaryError`, which kopf logs at ERROR,
  with no setting to change it; a daemon waits instead, and kopf's ERROR lines stay errors;
- kopf runs timers and daemons beside change handlers, not after them (by design): polling
  in a timer and reconciling in handlers would need a lock of our own again;
- a nudge costs no API write (an annotation patch per webhook delivery and per held
  request, each followed by kopf's diff-base patch) and wakes the daemon at once, where kopf
  holds a change behind any pending TemporaryError delay of the same handler.

Errors: an exception from a reconcile leaves the daemon; kopf logs it with its traceback
and runs the daemon again after ``backoff`` (the polling interval). The inbox lives in the
LLM's kopf memo, so nudges sent meanwhile are kept. Handlers are registered on an explicit
`kopf.OperatorRegistry` (not kopf's global one), so the operator can be built, inspected
and run from `kubellm operator` and from tests without import-time side effects; kopf's
bookkeeping (progress, diff-base, finalizer) is kept under ``kubellm.dev/``; handlers
return nothing: the reconciler is the one writer of status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import kopf
from aiohttp import web

from kubellm.api.identity import GROUP, PLURAL, VERSION
from kubellm.operator.config import OperatorConfig
from kubellm.operator.demanding import follow_demand
from kubellm.operator.metrics import LLMS
from kubellm.operator.reconciling import Reconciler
from kubellm.operator.webhooks import build_app, register_webhook
from kubellm.redaction import redact

__all__ = ["Inbox", "Nudges", "build_registry", "configure_settings", "register_in_background"]

log = logging.getLogger(__name__)

#: how long kopf lets a stopping daemon finish the reconcile in flight before cancelling it
#: (the thread then runs to its end unobserved); kopf looks again only after this long, so
#: it is also what deleting an LLM while it is being reconciled costs
RECONCILE_GRACE_S = 5.0


def configure_settings(settings: kopf.OperatorSettings) -> None:
    settings.persistence.finalizer = "kubellm.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kubellm.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="kubellm.dev", key="last-handled-configuration"
    )
    settings.posting.enabled = False  # our Events come from the reconciler, one per transition
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330


class Inbox:
    """Why one LLM's reconcile daemon should run again, collected until it does.

    Used on kopf's event loop only. Nudges that arrive while a reconcile runs are served by
    one more reconcile right after it (a reconcile reads everything afresh)."""

    def __init__(self, key: str) -> None:
        self.key = key  # "namespace/name"
        self._why: list[str] = []
        self._nudged = asyncio.Event()

    @classmethod
    def of(cls, memo: Any, namespace: str | None, name: str) -> Inbox:
        """The inbox in an LLM's kopf memo (one memo per object, kept for its lifetime)."""
        inbox = memo.get("inbox")
        if not isinstance(inbox, Inbox):
            inbox = memo["inbox"] = cls(f"{namespace or 'default'}/{name}")
        return inbox

    def nudge(self, why: str) -> None:
        if why not in self._why:
            self._why.append(why)
        self._nudged.set()

    async def take(self, timeout: float, stopped: kopf.DaemonStopped) -> str | None:
        """The first reason to reconcile again; None when ``timeout`` passed first or the
        daemon is asked to stop."""
        if not self._nudged.is_set():
            nudged = asyncio.ensure_future(self._nudged.wait())
            stopping = asyncio.ensure_future(stopped.wait())
            try:
                await asyncio.wait(
                    (nudged, stopping), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                nudged.cancel()
                stopping.cancel()
        if stopped or not self._why:
            return None
        why, self._why = self._why[0], []
        self._nudged.clear()
        return why


class Nudges:
    """Wake the reconcile daemons of LLMs, found through kopf's indices (``Index`` maps a
    key to the values of every object that produced it)."""

    def __init__(
        self,
        by_llm: Mapping[tuple[str, str], Iterable[Inbox]],
        by_model: Mapping[str, Iterable[Inbox]],
    ) -> None:
        self._by_llm = by_llm
        self._by_model = by_model

    def llm(self, namespace: str, name: str, why: str) -> None:
        for inbox in self._by_llm.get((namespace, name), ()):
            inbox.nudge(why)

    def model(self, model: str, why: str) -> list[str]:
        """Nudge every LLM of registered model ``model``; their ``namespace/name``."""
        inboxes = list(self._by_model.get(model, ()))
        for inbox in inboxes:
            inbox.nudge(why)
        return sorted(inbox.key for inbox in inboxes)


async def register_in_background(reconciler: Reconciler, config: OperatorConfig) -> None:
    """Register the MLflow webhook in a worker thread, within a bound; a failure is a
    warning (the polling interval still notices registry changes), never a crash."""
    assert config.tracking_uri and config.webhook_public_url and config.webhook_secret
    uri, url, secret = config.tracking_uri, config.webhook_public_url, config.webhook_secret
    bound = 2 * config.http_policy().worst_case_s + 5.0  # two registry calls, then give up

    def register() -> None:
        register_webhook(reconciler.registry(uri), url, secret)

    try:
        await asyncio.wait_for(asyncio.to_thread(register), timeout=bound)
    except TimeoutError:
        log.warning(
            "could not register the MLflow webhook: no answer within %.0f s; "
            "registry changes are noticed by polling",
            bound,
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning(
            "could not register the MLflow webhook (registry changes are noticed by polling): %s",
            redact(str(exc)),
        )


def build_registry(reconciler: Reconciler, config: OperatorConfig) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    runner: dict[str, web.AppRunner] = {}
    background: dict[str, asyncio.Task[None]] = {}

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # An explicit registry does not carry kopf's default login handlers.
        return kopf.login_via_client(**kwargs)

    @kopf.index(GROUP, VERSION, PLURAL, id="llm_inboxes", registry=registry)
    async def llm_inboxes(
        namespace: str | None, name: str, memo: kopf.Memo, **_: Any
    ) -> dict[tuple[str, str], Inbox]:
        return {(namespace or "default", name): Inbox.of(memo, namespace, name)}

    @kopf.index(GROUP, VERSION, PLURAL, id="llms_by_model", registry=registry)
    async def llms_by_model(
        namespace: str | None, name: str, spec: kopf.Spec, memo: kopf.Memo, **_: Any
    ) -> dict[str, Inbox] | None:
        model = (spec.get("model") or {}).get("registeredModel")
        if not isinstance(model, str) or not model:
            return None  # an invalid spec: the reconciler says so in its status
        return {model: Inbox.of(memo, namespace, name)}

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
        configure_settings(settings)
        # kopf passes every index to every handler as a kwarg named after it
        nudges = Nudges(kwargs["llm_inboxes"], kwargs["llms_by_model"])
        app = build_app(config.webhook_secret, nudges.model)
        app_runner = web.AppRunner(app, access_log=None)
        await app_runner.setup()
        try:
            await web.TCPSite(app_runner, config.webhook_host, config.webhook_port).start()
        except OSError as exc:
            await app_runner.cleanup()
            # Permanent: kopf logs it once and the operator exits (a pod restarts, visibly).
            raise kopf.PermanentError(
                f"cannot serve webhooks and metrics on "
                f"{config.webhook_host}:{config.webhook_port}: {exc}"
            ) from exc
        runner["app"] = app_runner
        log.info("webhook and metrics on %s:%d", config.webhook_host, config.webhook_port)
        if config.webhook_public_url and config.webhook_secret and config.tracking_uri:
            # Off the event loop and not awaited: kopf's liveness endpoint and the watches
            # run on this loop, and the registry may be slow or down at start-up.
            background["register"] = asyncio.create_task(register_in_background(reconciler, config))
        if config.gateway_demand_url:  # scale to zero: demand from the gateways
            background["demand"] = asyncio.create_task(
                follow_demand(config.gateway_demand_url, reconciler, nudges.llm)
            )

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        for task in background.values():
            if not task.done():
                task.cancel()
        background.clear()
        if "app" in runner:
            await runner.pop("app").cleanup()

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
    async def changed(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
        Inbox.of(memo, namespace, name).nudge("change")

    @kopf.daemon(
        GROUP,
        VERSION,
        PLURAL,
        registry=registry,
        backoff=config.poll_interval,
        cancellation_backoff=RECONCILE_GRACE_S,
        cancellation_timeout=1.0,
    )
    async def reconciling(
        namespace: str | None,
        name: str,
        memo: kopf.Memo,
        stopped: kopf.DaemonStopped,
        retry: int,
        **_: Any,
    ) -> None:
        ns = namespace or "default"
        inbox = Inbox.of(memo, namespace, name)
        # The first reconcile waits for kopf's creation or resumption (it sees the object as
        # kopf settled it); after a failure kopf restarted us after its backoff: go on at once.
        wait, then = (0.0, "retry") if retry else (config.poll_interval, "timer")
        invalid = ""
        LLMS.inc()
        try:
            while True:
                why = await inbox.take(wait, stopped)
                if stopped:
                    return
                outcome = await asyncio.to_thread(reconciler.reconcile, ns, name, why or then)
                if outcome.invalid and outcome.message != invalid:
                    log.warning("LLM %s/%s is invalid: %s", ns, name, outcome.message)
                invalid = outcome.message if outcome.invalid else ""
                wait, then = config.poll_interval, "timer"
                if outcome.requeue_after is not None and outcome.requeue_after < wait:
                    wait, then = outcome.requeue_after, "requeue"
        finally:
            LLMS.dec()

    return registry
