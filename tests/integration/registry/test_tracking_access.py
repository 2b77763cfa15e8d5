"""Issue 12 item 1: an LLM cannot make the operator send its MLflow credentials elsewhere.

The operator's own credentials live in its environment; an LLM names any tracking URI it
likes. These tests run the real reconciler and the real MLflow client against a loopback
listener that records every request's headers.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from kubellm.operator.config import OperatorConfig
from kubellm.operator.reconciling import TRACKING_REFUSED, Reconciler
from tests.unit.operator.memory_kube import MemoryKube

from .listeners import recording_server, refused_port

REPO = Path(__file__).resolve().parents[3]


def _llm(tracking_uri: str | None) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((REPO / "examples/tiny-pretrain.yaml").read_text())
    obj["metadata"].update(namespace="default", uid="llm-uid", generation=1)
    if tracking_uri is not None:
        obj["spec"]["mlflow"] = {"trackingUri": tracking_uri}
    return obj


def _status(kube: MemoryKube) -> dict[str, Any]:
    llm = kube.get("LLM", "default", "support-bot")
    assert llm is not None
    return dict(llm.get("status") or {})


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_llm_naming_a_foreign_tracking_uri_gets_no_request_and_a_clear_condition(
    operator_credentials: tuple[str, str], bounded_http: object
) -> None:
    with recording_server() as attacker:
        kube = MemoryKube()
        kube.add(_llm(attacker.url))
        config = OperatorConfig(tracking_uri=f"http://127.0.0.1:{refused_port()}")
        outcome = Reconciler(kube, config).reconcile("default", "support-bot")
        again = Reconciler(kube, config).reconcile("default", "support-bot", "timer")

    assert attacker.requests == []  # not even a request, so no Authorization header
    assert outcome.invalid and again.invalid and again.requeue_after is None  # no retry storm
    assert outcome.status_written and not again.status_written  # the status was current
    status = _status(kube)
    cond = _condition(status, "SpecValid")
    assert (cond["status"], cond["reason"]) == ("False", TRACKING_REFUSED)
    assert attacker.url in cond["message"] and "not allowed" in cond["message"]
    assert status["phase"] == "Invalid"
    warnings = [e for e in kube.events if e["reason"] == TRACKING_REFUSED]
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning"  # once, not per poll


def test_allowed_tracking_uri_is_reached_with_the_operators_credentials(
    operator_credentials: tuple[str, str], bounded_http: object
) -> None:
    user, password = operator_credentials
    with recording_server() as allowed:
        kube = MemoryKube()
        kube.add(_llm(allowed.url + "/"))  # same server, spelled differently
        config = OperatorConfig(
            tracking_uri=f"http://127.0.0.1:{refused_port()}", allowed_tracking_uris=(allowed.url,)
        )
        Reconciler(kube, config).reconcile("default", "support-bot")

    basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    assert allowed.requests and set(allowed.authorizations) == {basic}
    assert _condition(_status(kube), "SpecValid")["status"] == "True"


def test_non_http_and_credential_bearing_uris_are_refused_before_any_client_is_built(
    operator_credentials: tuple[str, str], tmp_path: Path
) -> None:
    kube = MemoryKube()
    store = tmp_path / "operator-filesystem"
    kube.add(_llm(store.as_uri()))
    config = OperatorConfig(tracking_uri="http://mlflow.example:5000")
    assert Reconciler(kube, config).reconcile("default", "support-bot").invalid
    assert not store.exists()  # MLflow's file store would have created it
    assert "http(s) only" in _condition(_status(kube), "SpecValid")["message"]

    # refused by the spec's validation or by the operator's policy; never printed
    kube.add(_llm("http://mallory:pw@mlflow.example:5000"))
    assert Reconciler(kube, config).reconcile("default", "support-bot").invalid
    cond = _condition(_status(kube), "SpecValid")
    assert cond["status"] == "False" and "credentials" in cond["message"]
    assert "mallory:pw" not in repr(_status(kube)) + repr(kube.events)


def test_userinfo_of_the_operators_own_uri_never_reaches_status_or_events(
    operator_credentials: tuple[str, str], bounded_http: object
) -> None:
    kube = MemoryKube()
    kube.add(_llm(None))
    config = OperatorConfig(tracking_uri=f"http://alice:hunter2@127.0.0.1:{refused_port()}")
    outcome = Reconciler(kube, config).reconcile("default", "support-bot")

    status = _status(kube)
    assert outcome.requeue_after is not None  # unreachable: try again later
    assert "registry unreachable" in status["message"]
    assert "hunter2" not in repr(status) and "alice:" not in repr(status)
    assert "://***@127.0.0.1" in status["message"]
    assert all("hunter2" not in repr(e) for e in kube.events)
