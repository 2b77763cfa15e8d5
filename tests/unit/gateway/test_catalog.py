"""The catalog: endpoints derived from ready Pods by the Service's selector; model names."""

from __future__ import annotations

from kubellm.gateway.catalog import Catalog
from kubellm.gateway.routing import Endpoint, Route
from tests.unit.gateway.objects import llm, pod, service

ROUTES = [{"version": "3", "service": "bot", "weight": 100}]


def _catalog() -> Catalog:
    c = Catalog()
    c.replace("LLM", [llm("bot", routes=ROUTES)])
    c.replace("Service", [service("bot", "bot", "3")])
    c.replace("Pod", [])
    return c


def test_ready_pod_of_the_selected_version_is_an_endpoint() -> None:
    c = _catalog()
    c.apply("Pod", "ADDED", pod("bot-v3-a", "bot", "3", "127.64.0.5", port=8123))
    assert c.endpoints("default", "bot") == (Endpoint("127.64.0.5", 8123, "bot-v3-a"),)


def test_unready_terminating_ipless_or_other_version_pods_are_not_endpoints() -> None:
    c = _catalog()
    c.apply("Pod", "ADDED", pod("starting", "bot", "3", "127.64.0.6", ready=False))
    c.apply("Pod", "ADDED", pod("draining", "bot", "3", "127.64.0.7", deleting=True))
    c.apply("Pod", "ADDED", pod("pending", "bot", "3", None))
    c.apply("Pod", "ADDED", pod("old", "bot", "2", "127.64.0.8"))
    c.apply("Pod", "ADDED", pod("elsewhere", "bot", "3", "127.64.0.9", ns="other"))
    c.apply("Pod", "ADDED", pod("done", "bot", "3", "127.64.0.10", phase="Succeeded"))
    assert c.endpoints("default", "bot") == ()


def test_endpoints_follow_pod_events() -> None:
    c = _catalog()
    c.apply("Pod", "ADDED", pod("a", "bot", "3", "127.64.0.5", ready=False))
    assert c.endpoints("default", "bot") == ()
    c.apply("Pod", "MODIFIED", pod("a", "bot", "3", "127.64.0.5"))
    assert len(c.endpoints("default", "bot")) == 1
    c.apply("Pod", "DELETED", pod("a", "bot", "3", "127.64.0.5"))
    assert c.endpoints("default", "bot") == ()


def test_a_service_switching_version_switches_endpoints() -> None:
    c = _catalog()
    c.apply("Pod", "ADDED", pod("v3", "bot", "3", "127.64.0.5"))
    c.apply("Pod", "ADDED", pod("v4", "bot", "4", "127.64.0.6"))
    assert [e.pod for e in c.endpoints("default", "bot")] == ["v3"]
    c.apply("Service", "MODIFIED", service("bot", "bot", "4"))
    assert [e.pod for e in c.endpoints("default", "bot")] == ["v4"]


def test_numeric_target_port_is_used_as_is() -> None:
    c = _catalog()
    svc = service("bot", "bot", "3")
    svc["spec"]["ports"][0]["targetPort"] = 9001
    c.apply("Service", "MODIFIED", svc)
    c.apply("Pod", "ADDED", pod("a", "bot", "3", "127.64.0.5"))
    assert c.endpoints("default", "bot")[0].port == 9001


def test_routes_are_read_from_the_llm_status() -> None:
    c = _catalog()
    assert c.llms[("default", "bot")].routes == (Route("3", "bot", 100),)
    c.apply("LLM", "MODIFIED", llm("bot", routes=[]))
    assert c.llms[("default", "bot")].routes == ()


def test_model_resolves_by_name_or_namespace_slash_name() -> None:
    c = _catalog()
    c.apply("LLM", "ADDED", llm("bot", ns="team-b"))
    c.apply("LLM", "ADDED", llm("writer", ns="team-b"))
    found = c.resolve("writer")
    assert not isinstance(found, list) and found is not None and found.key == "team-b/writer"
    both = c.resolve("bot")
    assert isinstance(both, list) and [v.key for v in both] == ["default/bot", "team-b/bot"]
    one = c.resolve("team-b/bot")
    assert not isinstance(one, list) and one is not None and one.namespace == "team-b"
    assert c.resolve("nobody") is None
    assert c.resolve("team-c/bot") is None


def test_relisting_one_namespace_keeps_the_others() -> None:
    c = Catalog()
    c.replace("LLM", [llm("a", ns="x")], "x")
    c.replace("LLM", [llm("b", ns="y")], "y")
    c.replace("LLM", [], "x")
    assert list(c.llms) == [("y", "b")]


def test_listeners_hear_every_change() -> None:
    c = _catalog()
    heard: list[int] = []
    c.on_change(lambda: heard.append(1))
    c.apply("Pod", "ADDED", pod("a", "bot", "3", "127.64.0.5"))
    c.replace("Pod", [])
    assert len(heard) == 2
