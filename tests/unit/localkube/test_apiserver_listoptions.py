"""ListOptions defaulting and validation, as k8s.io/apimachinery's ValidateListOptions."""

from __future__ import annotations

import pytest

from localkube.apiserver.errors import ApiError
from localkube.apiserver.listoptions import (
    NOT_OLDER_THAN,
    ListOptions,
    parse_bool,
    parse_list_options,
)

WATCHLIST = {"sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan"}


def _invalid(query: dict[str, str], watch: bool) -> ApiError:
    with pytest.raises(ApiError) as info:
        parse_list_options(query, watch=watch)
    return info.value


@pytest.mark.parametrize("rv", ["", "0"])
def test_legacy_watch_from_current_state_defaults_to_watchlist(rv: str) -> None:
    opts = parse_list_options({"resourceVersion": rv}, watch=True)
    assert opts.send_initial_events is True
    assert opts.resource_version_match == NOT_OLDER_THAN


def test_watch_from_a_resource_version_is_not_defaulted() -> None:
    opts = parse_list_options({"resourceVersion": "12", "allowWatchBookmarks": "true"}, True)
    assert opts.send_initial_events is None
    assert opts.resource_version_match == ""
    assert opts.allow_watch_bookmarks is True


def test_explicit_send_initial_events_false_is_kept() -> None:
    opts = parse_list_options(
        {"sendInitialEvents": "false", "resourceVersionMatch": "NotOlderThan"}, True
    )
    assert opts.send_initial_events is False


def test_list_is_never_defaulted() -> None:
    assert ListOptions(watch=False).defaulted() == ListOptions(watch=False)


def test_watchlist_without_bookmarks_is_valid() -> None:
    # upstream does not require allowWatchBookmarks; it only withholds the end bookmark
    opts = parse_list_options(WATCHLIST, watch=True)
    assert opts.send_initial_events is True
    assert opts.allow_watch_bookmarks is False


def test_send_initial_events_without_not_older_than_is_422() -> None:
    err = _invalid({"sendInitialEvents": "true", "resourceVersion": "5"}, watch=True)
    assert err.code == 422 and err.reason == "Invalid"
    assert err.message == (
        'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
        "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
    )
    body = err.body()
    assert body["details"]["group"] == "meta.k8s.io"
    assert body["details"]["kind"] == "ListOptions"
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueForbidden",
            "message": "Forbidden: sendInitialEvents requires setting resourceVersionMatch "
            "to NotOlderThan",
            "field": "resourceVersionMatch",
        }
    ]


def test_resource_version_match_on_plain_watch_is_422() -> None:
    err = _invalid({"resourceVersionMatch": "NotOlderThan", "resourceVersion": "5"}, True)
    assert err.code == 422
    assert "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided" in (
        err.message
    )


def test_exact_match_on_watchlist_lists_both_causes() -> None:
    err = _invalid({"sendInitialEvents": "true", "resourceVersionMatch": "Exact"}, True)
    assert [c["reason"] for c in err.causes or []] == [
        "FieldValueForbidden",
        "FieldValueNotSupported",
    ]
    assert err.message.startswith('ListOptions.meta.k8s.io "" is invalid: [')
    assert 'Unsupported value: "Exact": supported values: "NotOlderThan"' in err.message


def test_resource_version_match_with_continue_on_watch_is_422() -> None:
    err = _invalid({**WATCHLIST, "continue": "abc"}, True)
    assert "resourceVersionMatch is forbidden when continue is provided" in err.message


@pytest.mark.parametrize("value", ["true", "false"])
def test_send_initial_events_on_list_is_422(value: str) -> None:
    err = _invalid({"sendInitialEvents": value}, watch=False)
    assert err.code == 422
    assert err.message.endswith(
        "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list"
    )


def test_list_match_rules() -> None:
    assert (
        "forbidden unless resourceVersion is provided"
        in _invalid({"resourceVersionMatch": "NotOlderThan"}, False).message
    )
    assert (
        'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'
        in _invalid({"resourceVersionMatch": "Exact", "resourceVersion": "0"}, False).message
    )
    unsupported = _invalid({"resourceVersionMatch": "Newest", "resourceVersion": "3"}, False)
    assert 'supported values: "Exact", "NotOlderThan", ""' in unsupported.message
    ok = parse_list_options({"resourceVersionMatch": "NotOlderThan", "resourceVersion": "3"}, False)
    assert ok.resource_version == "3"


def test_booleans_decode_as_apimachinery_query_parameters() -> None:
    assert parse_bool(None) is None
    assert parse_bool("0") is False
    assert parse_bool("False") is False and parse_bool("FALSE") is False
    for value in ("1", "true", "", "maybe", "f"):
        assert parse_bool(value) is True
