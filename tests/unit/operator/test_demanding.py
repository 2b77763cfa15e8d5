"""The operator's board of gateway reports: news, freshness, several replicas."""

from __future__ import annotations

from kubellm.gateway.demand import DemandReport, LLMDemand
from kubellm.operator.config import OperatorConfig
from kubellm.operator.demanding import DemandBoard, _with_host


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _report(instance: str = "a", seq: int = 1, **llms: LLMDemand) -> DemandReport:
    return DemandReport(instance, seq, 500.0, {f"ns/{k}": v for k, v in llms.items()})


def test_a_first_held_request_is_news_and_more_of_them_are_not() -> None:
    board = DemandBoard()
    assert board.update("gw-1", _report(bot=LLMDemand(idle_seconds=9))) == []
    assert board.update("gw-1", _report(bot=LLMDemand(held=1))) == ["ns/bot"]
    assert board.update("gw-1", _report(bot=LLMDemand(held=5))) == []


def test_a_finished_cold_start_is_news() -> None:
    board = DemandBoard()
    board.update("gw-1", _report(bot=LLMDemand(held=3)))
    done = LLMDemand(inflight=3, cold_starts=1, last_cold_start_seconds=6.0)
    assert board.update("gw-1", _report(bot=done)) == ["ns/bot"]


def test_held_requests_on_another_replica_are_news_only_if_none_were_held() -> None:
    board = DemandBoard()
    board.update("gw-1", _report(bot=LLMDemand(held=2)))
    assert board.update("gw-2", _report("b", bot=LLMDemand(held=1))) == []
    assert board.get("ns", "bot") == LLMDemand(held=3)


def test_stale_reports_make_demand_unknown() -> None:
    clock = Clock()
    board = DemandBoard(stale_after=60, clock=clock)
    assert board.get("ns", "bot") is None  # nobody reported
    board.update("gw-1", _report(bot=LLMDemand(idle_seconds=42)))
    assert board.get("ns", "bot") == LLMDemand(idle_seconds=42)
    clock.now += 61
    assert board.get("ns", "bot") is None


def test_an_llm_no_gateway_mentions_is_idle_since_the_newest_gateway_started() -> None:
    board = DemandBoard()
    board.update("gw-1", DemandReport("a", 1, 30.0, {}))
    assert board.get("ns", "fresh") == LLMDemand(idle_seconds=30.0)


def test_dropped_replica_no_longer_counts() -> None:
    board = DemandBoard()
    board.update("gw-1", _report(bot=LLMDemand(held=2)))
    board.drop("gw-1")
    assert board.get("ns", "bot") is None


def test_each_resolved_address_replaces_the_host_of_the_url() -> None:
    url = "http://kubellm-gateway-admin.kubellm-system.svc:9090/demand"
    assert _with_host(url, "10.0.0.7") == "http://10.0.0.7:9090/demand"
    assert _with_host(url, "fd00::7") == "http://[fd00::7]:9090/demand"


def test_demand_url_comes_from_the_environment() -> None:
    url = "http://gw:9090/demand"
    assert OperatorConfig.from_env({"KUBELLM_GATEWAY_DEMAND_URL": url}).gateway_demand_url == url
    assert OperatorConfig.from_env({}).gateway_demand_url is None
