"""Issue 15, item 2: a version production was rolled back from is not promoted again without
a new trigger, even when the LLM's status is lost.

The withdrawal lived only in ``status.withdrawnVersions``: an LLM re-created over the same
registry (or restored without its status) tested and promoted the rolled-back version again.
Now the registry tag ``kubellm.rollout.rolledBack``, written by every rollback, counts too,
read defensively (`reading.rolled_back_token`) under the same rule as the status: the
rollback's retry token must be the current one.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, cast

import pytest

from kubellm.api.status import ConditionStatus
from kubellm.operator.config import OperatorConfig
from kubellm.operator.observed import Observed
from kubellm.operator.planning import RETRY_ANNOTATION, ROLLBACK_ANNOTATION, plan
from kubellm.operator.planning.trust import (
    PROMOTION_SIGNATURE_TAG,
    ROLLED_BACK_TAG,
    promotion_signature,
    retry_token,
)
from kubellm.operator.reading import observe_registry, rolled_back_token
from kubellm.registry import Registry
from tests.unit.operator.test_plan import CONFIG, NOW, _cond, _kinds, _llm, _ready_dep
from tests.unit.operator.test_rollback import (
    V1,
    _aliases,
    _promotions,
    _spec_without_training,
    _status_after_v2_promoted,
    _world,
)

KEY = "operator-only-promotion-key"
KEYED = replace(CONFIG, promotion_key=KEY)


class _Registry:
    """Aliases and version tags in memory: what `observe_registry` reads."""

    def __init__(self, aliases: dict[str, str], tags: dict[str, dict[str, str]]) -> None:
        self.aliases, self.tags = aliases, tags

    def resolve_alias(self, name: str, alias: str) -> str | None:
        return self.aliases.get(alias)

    def get_version_tags(self, name: str, version: str) -> dict[str, str]:
        return dict(self.tags.get(version, {}))


def _tag_of_a_requested_rollback(annotations: dict[str, str] | None = None) -> str:
    """The tag a ``rollback-to=1`` from version 2 writes on version 2."""
    llm = _spec_without_training(
        _llm(
            status=_status_after_v2_promoted(),
            annotations={ROLLBACK_ANNOTATION: "1", **(annotations or {})},
        )
    )
    p = plan(llm, _world(alias="2"), CONFIG, NOW)
    (tags,) = [a.tags for a in p.registry if a.kind == "set_tags" and a.version == "2"]
    return tags[ROLLED_BACK_TAG]


def _recreated(annotations: dict[str, str] | None = None) -> Any:
    """The LLM re-created with no status: production 1 is known only by its signed tag."""
    return _spec_without_training(_llm(annotations=annotations))


def _registry_after_rollback(llm: Any, rolled_back: str | None) -> Observed:
    """Production back on 1, the candidate alias still on 2 (its passed load test still
    there), read through `observe_registry` as the operator reads it."""
    tags = {
        "1": {PROMOTION_SIGNATURE_TAG: promotion_signature(KEY, llm, "1")},
        "2": {PROMOTION_SIGNATURE_TAG: promotion_signature(KEY, llm, "2")},
    }
    if rolled_back is not None:
        tags["2"][ROLLED_BACK_TAG] = rolled_back
    aliases = {"candidate": "2", "production": "1"}
    registry = observe_registry(cast(Registry, _Registry(aliases, tags)), llm)
    return replace(_world(alias="1", v1=_ready_dep(V1, "1"), serving="1"), registry=registry)


def test_a_version_rolled_back_before_the_status_was_lost_is_not_promoted_again() -> None:
    tag = _tag_of_a_requested_rollback()
    llm = _recreated()
    p = plan(llm, _registry_after_rollback(llm, tag), KEYED, NOW)
    assert _aliases(p) == [] and _promotions(p) == []
    assert p.status.production is not None and p.status.production.version == "1"
    assert _cond(p, "CandidateReady") == (ConditionStatus.FALSE, "CandidateWithdrawn")
    assert not [n for k, n in _kinds(p) if k == "Job"]  # not tested again either
    # without the tag the same registry promotes version 2 at once (the bug)
    untagged = plan(llm, _registry_after_rollback(llm, None), KEYED, NOW)
    assert ("production", "2") in _aliases(untagged)


def test_a_new_retry_annotation_is_the_new_trigger_for_a_tagged_version() -> None:
    before = {RETRY_ANNOTATION: "first"}
    tag = _tag_of_a_requested_rollback(before)
    assert json.loads(tag)["retryToken"] == retry_token(_llm(annotations=before)) != ""
    # re-created with the annotation of the rollback: still withdrawn
    same = _recreated(before)
    p = plan(same, _registry_after_rollback(same, tag), KEYED, NOW)
    assert _cond(p, "CandidateReady") == (ConditionStatus.FALSE, "CandidateWithdrawn")
    # a new value (or none: removing it is a change too) tests version 2 again, under a new Job
    for retry in ({RETRY_ANNOTATION: "second"}, None):
        llm = _recreated(retry)
        p = plan(llm, _registry_after_rollback(llm, tag), KEYED, NOW)
        assert _cond(p, "CandidateReady")[1] != "CandidateWithdrawn", retry
        if retry:
            jobs = [n for k, n in _kinds(p) if k == "Job"]
            assert len(jobs) == 1 and jobs[0].startswith("support-bot-loadtest-v2-")
        else:  # the load test of the empty token passed earlier: promoted
            assert ("production", "2") in _aliases(p)


def test_an_unreadable_tag_withdraws_the_version_until_a_retry_annotation() -> None:
    for hostile in ("not json", "[" * 100_000, '{"retryToken": 7}', "x" * 9000):
        llm = _recreated()
        p = plan(llm, _registry_after_rollback(llm, hostile), KEYED, NOW)
        assert _cond(p, "CandidateReady")[1] == "CandidateWithdrawn", hostile[:20]
        retried = _recreated({RETRY_ANNOTATION: "again"})
        p = plan(retried, _registry_after_rollback(retried, hostile), KEYED, NOW)
        assert _cond(p, "CandidateReady")[1] != "CandidateWithdrawn", hostile[:20]


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({}, None),
        ({"kubellm.rollout.verdict": "promoted"}, None),
        ({ROLLED_BACK_TAG: '{"retryToken": "a1b2c", "to": "1"}'}, "a1b2c"),
        ({ROLLED_BACK_TAG: '{"to": "1"}'}, ""),
        ({ROLLED_BACK_TAG: ""}, ""),
        ({ROLLED_BACK_TAG: "{"}, ""),
        ({ROLLED_BACK_TAG: '["a1b2c"]'}, ""),
        ({ROLLED_BACK_TAG: '{"retryToken": ["a1b2c"]}'}, ""),
        ({ROLLED_BACK_TAG: json.dumps({"retryToken": "t" * 65})}, ""),
        ({ROLLED_BACK_TAG: "[" * 100_000}, ""),
        ({ROLLED_BACK_TAG: json.dumps({"retryToken": "a1b2c", "pad": "x" * 9000})}, ""),
    ],
)
def test_the_rolled_back_tag_is_read_as_hostile_text(
    tags: dict[str, str], expected: str | None
) -> None:
    assert rolled_back_token(tags) == expected


def test_only_the_candidates_tag_is_read_as_its_withdrawal() -> None:
    llm = _recreated()
    tagged = {ROLLED_BACK_TAG: '{"retryToken": ""}'}
    aliases = {"candidate": "2", "production": "1"}
    on_production = _Registry(aliases, {"1": tagged})
    assert observe_registry(cast(Registry, on_production), llm).candidate_rolled_back is None
    on_candidate = _Registry(aliases, {"2": tagged})
    assert observe_registry(cast(Registry, on_candidate), llm).candidate_rolled_back == ""
    same = _Registry({"candidate": "1", "production": "1"}, {"1": tagged})
    assert observe_registry(cast(Registry, same), llm).candidate_rolled_back == ""


def test_unkeyed_operator_still_withholds_a_tagged_version() -> None:
    # without a promotion key nothing in the registry is trusted to serve, but the tag
    # still keeps the rolled-back version from being promoted
    unkeyed: OperatorConfig = CONFIG
    llm = _recreated()
    p = plan(llm, _registry_after_rollback(llm, _tag_of_a_requested_rollback()), unkeyed, NOW)
    assert _aliases(p) == [] and _promotions(p) == []
    assert _cond(p, "CandidateReady") == (ConditionStatus.FALSE, "CandidateWithdrawn")
