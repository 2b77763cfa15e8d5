"""Planning the post-promotion watch: after a promotion, production's live figures are
judged for ``spec.rollout.postPromotion.window`` while the release it left stays warm, and
a breach rolls production back to that release by itself.

A load test and a canary judge a release before it takes all the traffic; some faults only
show under the whole live load, or begin later. So the release production left is not
retired at once: it stays at its minimum replicas (no HPA, no traffic) for the window, and
every ``interval`` the gateways' figures of production are judged against
``spec.rollout.loadTest.slo`` (`analysis.judge_watch`). A breach moves the production alias,
the Service, the routes and the HPA back to the previous release in the same pass, says so
(condition ``RolledBack``, a Warning Event, the registry tag ``kubellm.rollout.rolledBack``
with the figures, a ``rolledBack`` history entry) and withdraws the version as a
``kubellm.dev/rollback-to`` does (`trust.withdraw`): it is not promoted again until a new
trigger. After the window the previous release retires as without a watch (`retiring`).

The watch is a small stage machine beside the candidate's (`stages`), read once per pass
(`read_watch`) and matched with one function per stage. Its record lives in
``status.production.watch`` (version, previous release, start), so a restarted operator
resumes the same window. `plan_watch` runs before the candidate's stage is read (a rollback
changes which version production is, and the candidate alias still naming the withdrawn
version reads as `stages.Stage.WITHDRAWN`); `start_watch` runs after it (a promotion in
this pass starts a new watch).

Each look judges production's figures over the last `lookback_seconds` of the watch (three
intervals, at least 30 s, never from before the promotion): a window since the promotion
would dilute a breach that begins late, one interval alone holds too few requests.

It does not fail closed, unlike a canary step: a look with fewer than ``minRequests``
production requests is not a breach and the watch simply goes on, and a window that ends
without enough traffic ends as passed (rolling back on silence would turn every quiet hour
into a rollback). Without an answer from a gateway nothing is judged either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import assert_never

from kubellm.api.resource import LLM
from kubellm.api.spec import PostPromotionSpec, duration_seconds
from kubellm.api.status import HISTORY_LIMIT, Release, WatchStatus
from kubellm.api.timestamps import parse_time
from kubellm.api.vocabulary import (
    ConditionType,
    EventReason,
    EventType,
    Reason,
    ReleaseVerdict,
    RollbackTrigger,
    WatchState,
)
from kubellm.loadtests.slo import parse_slo
from kubellm.operator.builders import build_serving_deployment, slo_argument
from kubellm.operator.naming import deployment_name
from kubellm.operator.planning.analysis import StepJudgement, StepOutcome, judge_watch
from kubellm.operator.planning.plans import RegistryAction, Scale
from kubellm.operator.planning.scaling import initial_replicas
from kubellm.operator.planning.stages import Rollout
from kubellm.operator.planning.trust import ROLLED_BACK_TAG, retry_token, withdraw
from kubellm.operator.planning.work import F, T, Work, seconds_since, stamp

__all__ = [
    "ROLLED_BACK_TAG",
    "Watch",
    "WatchStage",
    "lookback_seconds",
    "plan_watch",
    "start_watch",
    "watch_label",
    "watch_since",
]

#: the shortest window a look judges (seconds)
LOOKBACK_FLOOR = 30.0
#: reasons in the rolled-back tag, and characters each (MLflow keeps 5000 per tag value)
_REASONS, _REASON_LIMIT = 5, 300


class WatchStage(StrEnum):
    #: no watch in progress (none asked for, none started, or the last one ended)
    NONE = "None"
    #: inside the window: no breach seen (or too few requests to judge)
    WATCHING = "Watching"
    #: the window ended without a breach: the previous release retires now
    PASSED = "Passed"
    #: production breached an objective: it goes back to the previous release now
    BREACHED = "Breached"


@dataclass(frozen=True)
class Watch:
    """The watch's stage and what was read to reach it."""

    stage: WatchStage
    #: the verified production version before this pass
    production: str | None
    #: ``status.production.watch`` after this pass (None: no record)
    record: WatchStatus | None = None
    #: the look taken in this pass, if any
    judgement: StepJudgement | None = None

    @property
    def production_after(self) -> str | None:
        """The version production serves once this pass is carried out."""
        if self.stage is WatchStage.BREACHED and self.record is not None:
            return self.record.previous
        return self.production


def lookback_seconds(spec: PostPromotionSpec) -> float:
    """How far back each look judges: three intervals, at least `LOOKBACK_FLOOR`."""
    return max(LOOKBACK_FLOOR, 3 * duration_seconds(spec.interval))


def _active(llm: LLM) -> tuple[WatchStatus, PostPromotionSpec] | None:
    prod = llm.status.production
    watch = prod.watch if prod is not None else None
    spec = llm.spec.rollout.post_promotion
    if watch is None or spec is None or watch.state is not WatchState.WATCHING:
        return None
    return watch, spec


def watch_since(llm: LLM, now: datetime) -> datetime | None:
    """Start of the window the next look judges (None: no watch in progress); the operator
    reads the gateways for it (`operator.sampling`) before planning."""
    active = _active(llm)
    if active is None:
        return None
    watch, spec = active
    started = parse_time(watch.started_at)
    if started is None:
        return None
    return max(started, now - timedelta(seconds=lookback_seconds(spec)))


def _span(elapsed: float, window: float) -> str:
    if window >= 120:
        return f"{int(elapsed // 60)}m/{int(window // 60)}m"
    return f"{int(elapsed)}s/{int(window)}s"


def watch_label(w: Work, record: WatchStatus | None) -> str | None:
    """The stage as ``kubectl get llm`` shows it during a watch, e.g. "Watching 4m/10m"."""
    spec = w.llm.spec.rollout.post_promotion
    if record is None or spec is None or record.state is not WatchState.WATCHING:
        return None
    window = duration_seconds(spec.window)
    elapsed = min(max(seconds_since(record.started_at, w.now), 0.0), window)
    return f"Watching {_span(elapsed, window)}"


def _look(
    w: Work, watch: WatchStatus, spec: PostPromotionSpec
) -> tuple[WatchStatus, StepJudgement]:
    """Judge production's figures of the window the operator read, if it read this watch's."""
    started = parse_time(watch.started_at) or w.now
    live = w.observed.watch_live
    since = parse_time(live.since) if live is not None else None
    if live is None or since is None or since < started:
        live = None  # no gateway answered, or the figures are from before the promotion
    objectives = parse_slo(slo_argument(w.llm.spec.rollout.load_test.slo), source="spec.rollout")
    traffic = live.releases.get(watch.version) if live is not None else None
    judged = judge_watch(traffic, objectives, min_requests=spec.min_requests)
    reasons = list(judged.reasons)
    if live is None:
        reasons = ["no gateway answered with live figures (is the gateway installed?)"]
    elif judged.outcome is StepOutcome.WAITING:
        reasons = [
            f"only {judged.candidate.requests} request(s) in the window, fewer than "
            f"minRequests {spec.min_requests}: not judged (not a breach)"
        ]
    f = judged.candidate
    record = watch.model_copy(
        update={
            "judged_at": stamp(w.now),
            "since": live.since if live is not None else None,
            "requests": f.requests,
            "error_rate": f.error_rate,
            "p95_ms": f.p95_ms,
            "p95_ttft_ms": f.p95_time_to_first_token_ms,
            "tokens_per_second": f.tokens_per_second,
            "reasons": reasons,
        }
    )
    return record, judged


def read_watch(w: Work, production: str | None) -> Watch:
    """The watch's stage, from ``status.production.watch``, the spec and the live figures."""
    prod = w.llm.status.production
    previous = prod.watch if prod is not None else None
    if previous is None or previous.state is not WatchState.WATCHING:
        return Watch(WatchStage.NONE, production, previous)  # a finished watch's record
    active = _active(w.llm)
    if active is None or production != previous.version:
        # the spec no longer asks for a watch, or production moved (a rollback-to): over
        return Watch(WatchStage.NONE, production)
    watch, spec = active
    record, judged = _look(w, watch, spec)
    if judged.outcome is StepOutcome.FAILED:
        ended = record.model_copy(
            update={"state": WatchState.ROLLED_BACK, "ended_at": stamp(w.now)}
        )
        return Watch(WatchStage.BREACHED, production, ended, judged)
    if seconds_since(watch.started_at, w.now) >= duration_seconds(spec.window):
        ended = record.model_copy(update={"state": WatchState.PASSED, "ended_at": stamp(w.now)})
        return Watch(WatchStage.PASSED, production, ended, judged)
    return Watch(WatchStage.WATCHING, production, record, judged)


def plan_watch(w: Work, production: str | None) -> Watch:
    """Everything about the watch of the latest promotion in this pass; returns the stage
    read (its `Watch.production_after` is production's version from here on)."""
    watch = read_watch(w, production)
    match watch.stage:
        case WatchStage.NONE:
            pass
        case WatchStage.WATCHING:
            _watching(w, watch)
        case WatchStage.PASSED:
            _passed(w, watch)
        case WatchStage.BREACHED:
            _breached(w, watch)
        case _:  # a new WatchStage without its function fails the type check here
            assert_never(watch.stage)
    return watch


def _keep_warm(w: Work, version: str, started_at: str) -> None:
    """The previous release stays, at its minimum replicas once clients had ``drainDelay``
    to move (no HPA targets it: the operator is the one writer of its count meanwhile)."""
    target = initial_replicas(w)
    w.want(build_serving_deployment(w.llm, version, w.config, replicas=target))
    dep = w.observed.deployments.get(deployment_name(w.llm.name, version))
    drained = seconds_since(started_at, w.now) >= w.config.drain_delay
    if dep is not None and dep.desired_replicas not in (None, target) and drained:
        w.out.scale.append(Scale(dep.name, target))


def _ends_at(record: WatchStatus, spec: PostPromotionSpec) -> str:
    started = parse_time(record.started_at)
    if started is None:
        return "the end of its window"
    return stamp(started + timedelta(seconds=duration_seconds(spec.window)))


def _figures(record: WatchStatus) -> str:
    parts = [f"{record.requests} request(s)"]
    if record.error_rate is not None:
        parts.append(f"error rate {record.error_rate:.2%}")
    if record.p95_ms is not None:
        parts.append(f"p95 {record.p95_ms:g} ms")
    if record.tokens_per_second is not None:
        parts.append(f"{record.tokens_per_second:g} tokens/s")
    return ", ".join(parts)


def _watching(w: Work, watch: Watch) -> None:
    spec = w.llm.spec.rollout.post_promotion
    record = watch.record
    assert record is not None and spec is not None
    _keep_warm(w, record.previous, record.started_at)
    w.condition(
        ConditionType.ROLLED_BACK,
        F,
        Reason.WATCHING,
        f"version {record.version} is watched until {_ends_at(record, spec)}; version "
        f"{record.previous} stays warm to go back to; latest look: {_figures(record)}",
    )
    remaining = duration_seconds(spec.window) - seconds_since(record.started_at, w.now)
    w.out.wait(max(0.5, min(duration_seconds(spec.interval), remaining + 0.5)))


def _passed(w: Work, watch: Watch) -> None:
    spec = w.llm.spec.rollout.post_promotion
    record = watch.record
    assert record is not None and spec is not None
    w.condition(
        ConditionType.ROLLED_BACK,
        F,
        Reason.WATCH_PASSED,
        f"version {record.version} held its objectives for {spec.window} after its "
        f"promotion; version {record.previous} retires",
    )
    w.event(
        EventType.NORMAL,
        EventReason.WATCH_PASSED,
        f"version {record.version} held its objectives for {spec.window} "
        f"({_figures(record)} in the last look); version {record.previous} retires",
    )
    w.out.wait()  # the next pass retires the previous release and settles


def _rolled_back_tag(w: Work, record: WatchStatus) -> str:
    """The figures that broke the release, as JSON (reasons bounded: a tag is short)."""
    figures = {
        "at": stamp(w.now),
        "to": record.previous,
        "since": record.since,
        "requests": record.requests,
        "errorRate": record.error_rate,
        "p95Ms": record.p95_ms,
        "p95TtftMs": record.p95_ttft_ms,
        "tokensPerSecond": record.tokens_per_second,
        "retryToken": retry_token(w.llm),
        "reasons": [r[:_REASON_LIMIT] for r in record.reasons[:_REASONS]],
    }
    return json.dumps({k: v for k, v in figures.items() if v is not None}, sort_keys=True)


def _breached(w: Work, watch: Watch) -> None:
    llm = w.llm
    record = watch.record
    assert record is not None
    reasons = "; ".join(record.reasons)
    alias = llm.spec.rollout.production_alias
    w.out.registry.append(RegistryAction("set_alias", record.previous, alias=alias))
    tags = {ROLLED_BACK_TAG: _rolled_back_tag(w, record)}
    w.out.registry.append(RegistryAction("set_tags", record.version, tags=tags))
    withdraw(w, record.version)
    w.condition(
        ConditionType.ROLLED_BACK,
        T,
        Reason.POST_PROMOTION_BREACH,
        f"version {record.version} breached its objectives after its promotion "
        f"({reasons}); production went back to version {record.previous}",
    )
    w.event(
        EventType.WARNING,
        EventReason.ROLLED_BACK,
        f"production goes back from version {record.version} to version {record.previous}: "
        f"{reasons} ({_figures(record)} since {record.since})",
    )
    release = Release(
        version=record.version,
        verdict=ReleaseVerdict.ROLLED_BACK,
        at=stamp(w.now),
        p95_ms=record.p95_ms,
        tokens_per_second=record.tokens_per_second,
        error_rate=record.error_rate,
        reasons=list(record.reasons),
    )
    others = [
        r
        for r in w.status.history
        if not (r.version == release.version and r.verdict == release.verdict)
    ]
    w.status.history = [release, *others][:HISTORY_LIMIT]
    w.out.rollback = RollbackTrigger.WATCH
    w.out.wait()


def start_watch(w: Work, rollout: Rollout, watch: Watch) -> WatchStatus | None:
    """The watch record production's status carries after this pass: a new watch when this
    pass promoted a version over a previous release (and the spec asks for one), else the
    record read by `plan_watch`."""
    if rollout.promoted is None:
        return watch.record
    spec = w.llm.spec.rollout.post_promotion
    if spec is None or rollout.production is None:
        return None  # no watch asked for, or nothing to go back to (a first version)
    record = WatchStatus(
        version=rollout.promoted,
        previous=rollout.production,
        started_at=stamp(w.now),
        state=WatchState.WATCHING,
    )
    _keep_warm(w, record.previous, record.started_at)
    w.condition(
        ConditionType.ROLLED_BACK,
        F,
        Reason.WATCHING,
        f"version {record.version} is watched until {_ends_at(record, spec)}; version "
        f"{record.previous} stays warm to go back to",
    )
    w.event(
        EventType.NORMAL,
        EventReason.WATCH_STARTED,
        f"watching version {record.version} for {spec.window} (every {spec.interval}); "
        f"version {record.previous} stays warm to go back to",
    )
    w.out.wait(duration_seconds(spec.interval))
    return record
