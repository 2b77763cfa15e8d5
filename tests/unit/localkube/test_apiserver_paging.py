"""Paged lists: limit/continue with kube-apiserver's tokens, counts and errors."""

from __future__ import annotations

from typing import Any

import pytest

from localkube.apiserver.errors import ApiError
from localkube.apiserver.paging import paginate, storage_key


def _cm(ns: str, name: str) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name}}


ITEMS = sorted([_cm("a", "x"), _cm("a", "y"), _cm("a-b", "z"), _cm("b", "w")], key=storage_key)


def _page(limit: str | None, token: str = "", rv: int = 40, selected: bool = False) -> Any:
    return paginate(
        ITEMS, limit=limit, token=token, current_rv=rv, too_old=lambda r: r < 10, selected=selected
    )


def test_items_come_in_etcd_key_order() -> None:
    # "a-b/z" sorts before "a/x": etcd orders keys as strings
    assert [storage_key(o) for o in ITEMS] == ["a-b/z", "a/x", "a/y", "b/w"]


def test_pages_carry_the_first_resource_version_and_count_what_remains() -> None:
    first = _page("3")
    assert [storage_key(o) for o in first.items] == ["a-b/z", "a/x", "a/y"]
    assert first.metadata()["remainingItemCount"] == 1
    rest = _page("3", first.continue_token, rv=99)
    assert [storage_key(o) for o in rest.items] == ["b/w"]
    assert rest.metadata() == {"resourceVersion": "40"}  # the first page's, no more token
    assert "remainingItemCount" not in _page("1", selected=True).metadata()
    assert _page(None).metadata() == {"resourceVersion": "40"}


@pytest.mark.parametrize(
    ("token", "detail"),
    [
        ("x", "illegal base64 data at input byte 0"),
        ("a*b", "illegal base64 data at input byte 1"),
        ("eA", "invalid character 'x' looking for beginning of value"),
        ("eyJ2Ijo", "unexpected end of JSON input"),
    ],
)
def test_malformed_tokens_are_400_with_go_words(token: str, detail: str) -> None:
    with pytest.raises(ApiError) as err:
        _page("1", token)
    assert err.value.code == 400
    assert err.value.message == f"invalid continue token: continue key is not valid: {detail}"


def test_token_older_than_the_store_is_410_expired() -> None:
    token = _page("1", rv=5).continue_token
    with pytest.raises(ApiError) as err:
        _page("1", token)
    assert (err.value.code, err.value.reason) == (410, "Expired")
