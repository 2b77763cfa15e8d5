"""Untrusted JSON: nested too deep is malformed like any other bad text, one exception."""

from __future__ import annotations

import pytest

from kubellm.api import untrusted


@pytest.mark.parametrize("text", ["[" * 100_000, b"{" * 100_000, "not json", ""])
def test_malformed_or_too_deep_json_is_a_value_error(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        untrusted.loads(text)


def test_json_is_read_as_json_loads_reads_it() -> None:
    assert untrusted.loads(b'{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
