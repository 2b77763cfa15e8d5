"""kopf glue: every trigger calls the one reconciler; outcomes map onto kopf's retries.

Handlers are registered on an explicit `kopf.OperatorRegistry` (not kopf's global one) so
the operator can be built, inspected and run from `kubellm operator` and from tests without
import-time side effects. kopf's own bookkeeping (progress, diff-base, finalizer) is kept
under our domain, `kubellm.dev/`. Handlers return nothing: the reconciler is the only
writer of status.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from aiohttp import web

from kubellm.api.identity import GROUP, PLURAL, VERSION
from kubellm.operator.config import OperatorConfig
from kubellm.operator.demanding import follow_demand
from kubellm.operator.reconciling import Outcome, Reconciler
from kubellm.operator.webhooks import build_app, register_webhook
from kubellm.redaction import redact

__all__ = ["build_registry", "configure_settings", "register_in_background"]

log = logging.getLogger(__name__)


def configure_settings(settings: kopf.OperatorSettings) -> None:
    settings.persistence.finalizer = "kubellm.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kubellm.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="kubellm.dev", key="last-handled-configuration"
    )
    settings.posting.enabled = False  # our Events come from the reconciler, one per transition
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.execution.max_workers = 8
    waiting_filter = _WaitingIsNotAnError()
    for name in ("kopf.objects", "kopf"):
        logging.getLogger(name).addFilter(waiting_filter)


WAITING = "waiting: "


class _WaitingIsNotAnError(logging.Filter):
    """kopf logs every TemporaryError at ERROR; ours only mean "not yet" (a Job is still
    running), which is the normal life of an LLM, so they are logged at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and f"failed temporarily: {WAITING}" in str(
            record.getMessage()
        ):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _raise_for(outcome: Outcome) -> None:
    if outcome.invalid:
        raise kopf.PermanentError(outcome.message)
    if outcome.requeue_after is not None:
        raise kopf.TemporaryError(
            WAITING + (outcome.message or "in progress"), delay=outcome.requeue_after
        )


async def register_in_background(reconciler: Reconciler, config: OperatorConfig) -> None:
    """Register the MLflow webhook in a worker thread, within a bound; a failure is a
    warning (the polling timer still notices registry changes), never a crash."""
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

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_settings(settings)
        app = build_app(config.webhook_secret, reconciler.llms_for_model, reconciler.reconcile)
        app_runner = web.AppRunner(app, access_log=None)
        await app_runner.setup()
        await web.TCPSite(app_runner, config.webhook_host, config.webhook_port).start()
        runner["app"] = app_runner
        log.info("webhook and metrics on %s:%d", config.webhook_host, config.webhook_port)
        if config.webhook_public_url and config.webhook_secret and config.tracking_uri:
            # Off the event loop and not awaited: kopf's liveness endpoint and the watches
            # run on this loop, and the registry may be slow or down at start-up.
            background["register"] = asyncio.create_task(register_in_background(reconciler, config))
        if config.gateway_demand_url:  # scale to zero: demand from the gateways
            background["demand"] = asyncio.create_task(
                follow_demand(config.gateway_demand_url, reconciler)
            )

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        reconciler.close()
        for task in background.values():
            if not task.done():
                task.cancel()
        background.clear()
        if "app" in runner:
            await runner["app"].cleanup()

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
    def changed(namespace: str | None, name: str, **_: Any) -> None:
        _raise_for(reconciler.reconcile(namespace or "default", name, "change"))

    @kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        interval=config.poll_interval,
        initial_delay=config.poll_interval,
        registry=registry,
    )
    def poll(namespace: str | None, name: str, **_: Any) -> None:
        reconciler.reconcile(namespace or "default", name, "timer")

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry, optional=True)
    def deleted(namespace: str | None, name: str, **_: Any) -> None:
        # Children go with the LLM through ownerReferences; the registry is not touched.
        reconciler.forget(namespace or "default", name)

    return registry
