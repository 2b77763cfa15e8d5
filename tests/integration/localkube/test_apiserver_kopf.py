"""Real kopf against the API server: the kopf checklist and the §13 API faults.

One operator run walks through the phases in order (starting kopf costs seconds on
these machines); each phase pins one reaction the spec lists.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes import client
from kubernetes.client.rest import ApiException

from .apiserver_fixtures import WIDGET, WIDGET_CRD, Kube, kube

__all__ = ["kube"]

OPERATOR = str(Path(__file__).with_name("widget_operator.py"))
G, V, P = "example.com", "v1", "widgets"
FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
LAST_HANDLED = "kopf.zalando.org/last-handled-configuration"


class RequestLog(logging.Handler):
    """Collects the server's request lines (METHOD PATH STATUS MS)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def lists(self) -> int:
        return sum(
            1
            for line in self.lines
            if line.startswith("GET /apis/example.com/v1/widgets") and "watch=" not in line
        )


@pytest.fixture
def request_log() -> Iterator[RequestLog]:
    logger = logging.getLogger("localkube.apiserver")
    handler = RequestLog()
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_kopf_operator_handles_widgets_and_survives_api_faults(
    kube: Kube,
    request_log: RequestLog,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("KUBECONFIG", kube.env["KUBECONFIG"])
    # the client reads $KUBECONFIG once, at import time; kopf logs in through it
    monkeypatch.setattr(
        "kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", kube.env["KUBECONFIG"]
    )
    api = kube.api_client()
    client.ApiextensionsV1Api(api).create_custom_resource_definition(yaml.safe_load(WIDGET_CRD))
    co = client.CustomObjectsApi(api)
    faults = kube.server.server.faults

    def get(name: str) -> dict[str, Any] | None:
        try:
            return co.get_namespaced_custom_object(G, V, "default", P, name)  # type: ignore[no-any-return]
        except ApiException as e:
            assert e.status == 404
            return None

    def handled(name: str) -> bool:
        obj = get(name)
        return bool(
            obj
            and FINALIZER in obj["metadata"].get("finalizers", [])
            and LAST_HANDLED in obj["metadata"].get("annotations", {})
            and obj.get("status", {}).get("create_widget")
        )

    def create(name: str, size: int = 1) -> None:
        co.create_namespaced_custom_object(
            G, V, "default", P, yaml.safe_load(WIDGET.format(name=name, size=size))
        )

    with KopfRunner(["run", "--standalone", "-A", "--verbose", OPERATOR]) as runner:
        _wait(lambda: request_log.lists() >= 1, 15, "kopf to list widgets")
        time.sleep(0.5)

        # 1. a new CR gets the finalizer, the annotation and the status patch within 2 s
        start = time.monotonic()
        create("k1")
        _wait(lambda: handled("k1"), 2.5, "k1 handled")
        assert time.monotonic() - start < 2.5

        # fault: PATCH 500 once -> "Request attempt #1/... failed; will retry", then success
        kube.server.call(lambda: faults.add(verb="patch", resource="widgets", code=500))
        create("k2")
        _wait(lambda: handled("k2"), 6, "k2 handled after a 500")

        # fault: 429 with Retry-After 2 -> kopf waits 2 s ("Overriding the backoff")
        kube.server.call(
            lambda: faults.add(verb="patch", resource="widgets", code=429, retry_after=2)
        )
        create("k3")
        _wait(lambda: handled("k3"), 8, "k3 handled after a 429")

        # fault: 409 on kopf's merge-patch -> "Throttling ...", recovery on the next event
        kube.server.call(
            lambda: faults.add(verb="patch", resource="widgets", user_agent="kopf", code=409)
        )
        create("k6")
        _wait(lambda: "Throttling for" in caplog.text, 5, "kopf to throttle after a 409")
        time.sleep(1.2)
        co.patch_namespaced_custom_object(
            G, V, "default", P, "k6", {"metadata": {"labels": {"poke": "1"}}}
        )
        _wait(lambda: handled("k6"), 6, "k6 handled after a 409")

        # fault: watch cut -> re-watch from the last RV, no relist
        lists_before = request_log.lists()
        kube.server.call(lambda: faults.cut_watches("widgets"))
        time.sleep(0.5)
        create("k4")
        _wait(lambda: handled("k4"), 4, "k4 handled after a watch cut")
        assert request_log.lists() == lists_before

        # fault: watch ERROR 410 -> relist
        kube.server.call(lambda: faults.expire_watches("widgets"))
        _wait(lambda: request_log.lists() > lists_before, 5, "a relist after 410")
        create("k5")
        _wait(lambda: handled("k5"), 4, "k5 handled after a 410")

        # 2. delete runs the handler and the object disappears
        co.delete_namespaced_custom_object(G, V, "default", P, "k1")
        _wait(lambda: get("k1") is None, 5, "k1 to be gone")

    # 3. a clean exit
    assert runner.exit_code == 0
    assert runner.exception is None
    out = runner.stdout + caplog.text  # under pytest, kopf's log lines land in caplog
    assert "created widget k1" in out and "deleted widget k1" in out
    assert "Request attempt #1/" in out and "failed; will retry" in out
    assert "Overriding the backoff" in out and "retry-after 2s" in out
    events = client.CoreV1Api(api).list_namespaced_event(
        "default", field_selector="involvedObject.name=k1"
    )
    assert any(e.source.component == "kopf" for e in events.items)
    api.close()
