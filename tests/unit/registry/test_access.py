"""Which tracking URIs the operator may reach: its own, the configured ones, nothing else."""

from __future__ import annotations

import re

import pytest

from kubellm.registry import TrackingAccess, TrackingUriRefused
from kubellm.registry.access import canonical_http_uri

ACCESS = TrackingAccess.of("http://mlflow.mlflow.svc:5000", ["https://registry.example.com/ml/"])


@pytest.mark.parametrize(
    "uri",
    [
        "http://mlflow.mlflow.svc:5000",
        "HTTP://MLflow.mlflow.svc:5000/",
        "https://registry.example.com:443/ml",
        " https://registry.example.com/ml ",
    ],
)
def test_configured_servers_are_allowed_however_spelled(uri: str) -> None:
    ACCESS.check(uri)


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("http://127.0.0.1:9999", "not allowed"),
        ("http://mlflow.mlflow.svc:5001", "not allowed"),  # another port
        ("https://mlflow.mlflow.svc:5000", "not allowed"),  # another scheme
        ("https://registry.example.com/other", "not allowed"),  # another path
        ("http://169.254.169.254/latest/meta-data", "not allowed"),
        ("file:///var/run/secrets", "http(s) only"),
        ("sqlite:////tmp/x.db", "http(s) only"),
        ("databricks://profile", "http(s) only"),
        ("http://mlflow.mlflow.svc:notaport", "http(s) only"),
        ("http://eve:pw@mlflow.mlflow.svc:5000", "carries credentials"),
    ],
)
def test_anything_else_is_refused_with_the_reason(uri: str, says: str) -> None:
    with pytest.raises(TrackingUriRefused, match=re.escape(says)):
        ACCESS.check(uri)


def test_refusals_name_the_allowlist_and_never_print_userinfo() -> None:
    access = TrackingAccess.of("http://op:secret@mlflow:5000")
    access.check("http://op:secret@mlflow:5000")  # configured verbatim by the administrator
    with pytest.raises(TrackingUriRefused) as info:
        access.check("http://other:5000")
    assert "secret" not in str(info.value)
    assert "http://***@mlflow:5000" in str(info.value)
    assert "KUBELLM_ALLOWED_TRACKING_URIS" in str(info.value)


def test_local_stores_only_when_configured_verbatim() -> None:
    access = TrackingAccess.of("file:///mlruns")
    access.check("file:///mlruns")
    with pytest.raises(TrackingUriRefused):
        access.check("file:///etc")


def test_no_configuration_allows_nothing() -> None:
    with pytest.raises(TrackingUriRefused, match="allowed: none"):
        TrackingAccess.of(None).check("http://mlflow:5000")


def test_canonical_form_of_http_uris() -> None:
    assert canonical_http_uri("HTTPS://Host.Example/") == "https://host.example:443"
    assert canonical_http_uri("http://[::1]:5000/api") == "http://[::1]:5000/api"
    assert canonical_http_uri("http://u:p@h") == "http://h:80"
    assert canonical_http_uri("file:///x") is None
