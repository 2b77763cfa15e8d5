"""Deployment rollout arithmetic: surge/unavailable fenceposts, new and old RS scaling."""

from __future__ import annotations

from localkube.controllers.rollout import (
    ReplicaSetView,
    new_rs_replicas,
    old_rs_scale_down,
    resolve_fenceposts,
    rollout_complete,
    template_hash,
    templates_equal,
)

TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}


def test_fenceposts_round_surge_up_and_unavailable_down():
    assert resolve_fenceposts("25%", "25%", 3) == (1, 0)
    assert resolve_fenceposts("25%", "25%", 10) == (3, 2)
    assert resolve_fenceposts(None, None, 4) == (1, 1)


def test_fenceposts_both_zero_allow_one_unavailable():
    assert resolve_fenceposts(0, "0%", 5) == (0, 1)


def test_template_hash_is_stable_and_ignores_the_hash_label():
    labelled = {
        "metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}},
        "spec": TEMPLATE["spec"],
    }
    assert template_hash(TEMPLATE) == template_hash(labelled)
    assert templates_equal(TEMPLATE, labelled)
    changed = {
        "metadata": {"labels": {"app": "web"}, "annotations": {"restartedAt": "now"}},
        "spec": TEMPLATE["spec"],
    }
    assert template_hash(changed) != template_hash(TEMPLATE)


def test_new_rs_scales_up_into_the_surge_room_only():
    new = ReplicaSetView("new", 0, 0)
    old = ReplicaSetView("old", 3, 3)
    assert new_rs_replicas(3, 1, new, [new, old]) == 1  # 3 old + 1 surge
    new = ReplicaSetView("new", 1, 0)
    assert new_rs_replicas(3, 1, new, [new, old]) == 1  # total already at 4


def test_new_rs_never_exceeds_replicas_and_scales_down_when_deployment_shrinks():
    new = ReplicaSetView("new", 1, 1)
    assert new_rs_replicas(3, 5, new, [new]) == 3
    assert new_rs_replicas(2, 1, ReplicaSetView("new", 5, 5), [ReplicaSetView("new", 5, 5)]) == 2


def test_old_rs_scaled_down_only_as_far_as_availability_allows():
    # replicas 3, maxUnavailable 0: new has 1 available of 1, old 3 available -> remove 1 old
    new = ReplicaSetView("new", 1, 1)
    old = [ReplicaSetView("old", 3, 3)]
    assert old_rs_scale_down(3, 0, new, old) == {"old": 2}
    # the new pod is not yet available: nothing may go
    assert old_rs_scale_down(3, 0, ReplicaSetView("new", 1, 0), old) == {}


def test_unhealthy_old_replicas_are_cleaned_up_first_oldest_first():
    new = ReplicaSetView("new", 1, 0)
    old = [
        ReplicaSetView("older", 1, 0, created="2026-01-01T00:00:00Z"),
        ReplicaSetView("old", 2, 2, created="2026-02-01T00:00:00Z"),
    ]
    assert old_rs_scale_down(3, 1, new, old) == {"older": 0}


def test_rollout_complete_needs_all_updated_available_and_no_old_pods():
    assert rollout_complete(3, 3, 3, 3)
    assert not rollout_complete(3, 3, 4, 3)
    assert not rollout_complete(3, 2, 3, 3)
    assert not rollout_complete(3, 3, 3, 2)
