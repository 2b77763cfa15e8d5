"""Label and field selectors."""

from __future__ import annotations

import pytest

from localkube.apiserver.errors import ApiError
from localkube.apiserver.selectors import (
    FieldSelector,
    LabelSelector,
    match_label_selector_object,
)


def _obj(**labels: str) -> dict[str, object]:
    return {"metadata": {"name": "n", "namespace": "ns", "labels": labels}}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("tier in (a,b)", True),
        ("tier notin (a, b)", False),
        ("app", True),
        ("!app", False),
        ("!missing", True),
        ("app=web,tier=c", False),
        ("missing!=x", True),
    ],
)
def test_label_selector_operators(selector: str, matches: bool) -> None:
    assert LabelSelector(selector).matches(_obj(app="web", tier="a")) is matches


def test_label_selector_object_with_expressions() -> None:
    sel = {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]}
    assert match_label_selector_object(sel, {"a": "1", "b": "x"})
    assert not match_label_selector_object(sel, {"a": "1"})


def test_field_selector_common_and_event_fields() -> None:
    assert FieldSelector("metadata.name=n,metadata.namespace=ns", "/pods", "Pod").matches(_obj())
    assert not FieldSelector("metadata.name!=n", "/pods", "Pod").matches(_obj())
    event = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Widget", "uid": "u"}}
    assert FieldSelector(
        "involvedObject.uid=u,involvedObject.kind=Widget", "/events", "Event"
    ).matches(event)


def test_unknown_field_label_is_400_worded_per_kind_as_upstream() -> None:
    def message(resource_key: str, kind: str, builtin: bool = True) -> str:
        with pytest.raises(ApiError) as err:
            FieldSelector("spec.size=3", resource_key, kind, builtin=builtin)
        assert err.value.code == 400
        return err.value.message

    assert message("example.com/widgets", "Widget", False) == "field label not supported: spec.size"
    assert message("/pods", "Pod") == "field label not supported: spec.size"
    assert message("batch/jobs", "Job") == 'field label "spec.size" not supported for Job'
    assert message("/configmaps", "ConfigMap") == (
        '"spec.size" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )
