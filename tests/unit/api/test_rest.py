"""One table of kinds and one error for every Kubernetes client of ours."""

from __future__ import annotations

import pytest

from kubellm.api.identity import API_VERSION
from kubellm.api.rest import DEPLOYMENTS, LLMS, PODS, RESOURCES, ApiError, Resource

NODES = Resource("", "v1", "nodes", "Node", namespaced=False)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (PODS.path("ns"), "/api/v1/namespaces/ns/pods"),
        (PODS.path(), "/api/v1/pods"),
        (PODS.path("ns", "p", "log"), "/api/v1/namespaces/ns/pods/p/log"),
        (DEPLOYMENTS.path("ns", "d"), "/apis/apps/v1/namespaces/ns/deployments/d"),
        (
            LLMS.path("ns", "bot", "status"),
            "/apis/kubellm.dev/v1alpha1/namespaces/ns/llms/bot/status",
        ),
        (NODES.path("ignored", "n1"), "/api/v1/nodes/n1"),
    ],
)
def test_paths(path: str, expected: str) -> None:
    assert path == expected


def test_a_subresource_needs_an_object() -> None:
    assert PODS.path("ns", None, "log") == "/api/v1/namespaces/ns/pods"


def test_the_llm_kind_is_the_resources_identity() -> None:
    assert LLMS.api_version == API_VERSION and RESOURCES["LLM"] is LLMS
    assert PODS.api_version == "v1" and DEPLOYMENTS.api_version == "apps/v1"
    assert all(kind == r.kind for kind, r in RESOURCES.items())


def test_error_text_without_a_request() -> None:
    exc = ApiError(403, "Forbidden", "jobs.batch is forbidden")
    assert str(exc) == "403 Forbidden: jobs.batch is forbidden"
    assert (exc.status, exc.reason, exc.message) == (403, "Forbidden", "jobs.batch is forbidden")


def test_error_text_names_the_request() -> None:
    exc = ApiError(409, "Conflict", method="PATCH", path="/api/v1/namespaces/ns/pods/p")
    assert str(exc) == "PATCH /api/v1/namespaces/ns/pods/p: 409 Conflict"
    assert exc.conflict and not exc.not_found


def test_from_a_status_body() -> None:
    status = {"kind": "Status", "code": 404, "reason": "NotFound", "message": 'pods "p" not found'}
    exc = ApiError.from_response(404, status, "Not Found", method="GET", path="/p")
    assert exc.not_found and exc.reason == "NotFound" and exc.message == 'pods "p" not found'
    assert str(exc) == 'GET /p: 404 NotFound: pods "p" not found'


def test_from_a_text_body_keeps_the_http_reason_and_a_bounded_message() -> None:
    exc = ApiError.from_response(502, "x" * 2000, "Bad Gateway")
    assert exc.reason == "Bad Gateway" and exc.message == "x" * 500
    assert ApiError.from_response(500, None).message == ""
