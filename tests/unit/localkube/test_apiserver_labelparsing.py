"""Label selectors parsed as apimachinery's labels.Parse (messages seen from kube-apiserver)."""

from __future__ import annotations

import pytest

from localkube.apiserver.errors import ApiError
from localkube.apiserver.labelparsing import parse_label_selector
from localkube.apiserver.selectors import LabelSelector

LABEL_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("a=(b", "unable to parse requirement: found '(', expected: identifier"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a,", "found '', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
        (
            "a>b",
            "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' "
            "operators, the value must be an integer",
        ),
        (
            "a in (b,-c)",  # values are sorted first, so "-c" is values[0]
            f'unable to parse requirement: values[0][a]: Invalid value: "-c": {LABEL_VALUE_RULE}',
        ),
        (
            "-a=b",
            'unable to parse requirement: <nil>: Invalid value: "-a": name part must consist '
            "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
            "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
    ],
)
def test_refused_as_kube_apiserver_refuses(selector: str, message: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_label_selector(selector)
    assert (err.value.code, err.value.message) == (400, message)


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ("a in ()", {"a": ""}, True),  # () is the empty value
        ("a ==", {"a": ""}, True),
        ("in in (in)", {"in": "in"}, True),  # keywords are identifiers where values go
        ("a notin (x),!b", {}, True),
        ("a>1", {"a": "2"}, True),
        ("a<1", {"a": "x"}, False),
        ("a = b", {"a": "b"}, True),
        ("x.io/a!=b", {"x.io/a": "b"}, False),
    ],
)
def test_accepted_and_matched_as_upstream(
    selector: str, labels: dict[str, str], selected: bool
) -> None:
    obj = {"metadata": {"labels": labels}}
    assert LabelSelector(selector).matches(obj) is selected
