"""Children's names and labels come from one module and stay plain strings."""

from __future__ import annotations

import yaml

from kubellm.operator.naming import (
    LABEL_COMPONENT,
    Component,
    child_labels,
    loadtest_job_name,
    training_job_name,
    training_job_prefix,
)


def test_training_job_names_start_with_the_prefix_the_planner_matches() -> None:
    name = training_job_name("support-bot", "0123456789abcdef")
    assert name == "support-bot-train-01234567"
    assert name.startswith(training_job_prefix("support-bot"))
    assert not training_job_name("support", "0123456789").startswith(
        training_job_prefix("support-bot")
    )


def test_a_retried_load_test_carries_its_attempt_token() -> None:
    assert loadtest_job_name("support-bot", "2") == "support-bot-loadtest-v2"
    assert loadtest_job_name("support-bot", "2", "x7k2") == "support-bot-loadtest-v2-x7k2"


def test_component_labels_are_plain_strings_that_yaml_can_dump() -> None:
    labels = child_labels("support-bot", Component.SERVING, "3")
    assert type(labels[LABEL_COMPONENT]) is str
    assert "kubellm.dev/component: serving" in yaml.safe_dump(labels)
