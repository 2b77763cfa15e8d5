"""List and watch options: parsed from the query, defaulted and validated as upstream does.

kube-apiserver (WatchList on, as from 1.34 and in 1.32) decodes `ListOptions`, applies
`SetListOptionsDefaults` and rejects invalid combinations with `ValidateListOptions`
(k8s.io/apimachinery, meta/internalversion) before any storage call. kubectl from 1.35
watches with `sendInitialEvents=true&resourceVersionMatch=NotOlderThan` and waits for the
bookmark that ends the initial events, so the emulator follows the same rules:

* a watch with resourceVersion "" or "0" and neither `sendInitialEvents` nor
  `resourceVersionMatch` is defaulted to `sendInitialEvents=true`, `NotOlderThan` (the
  legacy "current state, then changes" watch is the same stream);
* `sendInitialEvents` on a watch requires `resourceVersionMatch=NotOlderThan`, and
  `resourceVersionMatch` on a watch requires `sendInitialEvents`;
* `sendInitialEvents` is forbidden on a list, and a list's `resourceVersionMatch` needs a
  resourceVersion, no `continue`, and is `Exact` (not with "0") or `NotOlderThan`.

`allowWatchBookmarks` is not validated (upstream sends the initial-events-end bookmark only
when it is true, and still sends the initial events when it is false). Violations are one
422 `Invalid` Status for `ListOptions.meta.k8s.io`, one cause per violated rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from .defaults import invalid

__all__ = ["NOT_OLDER_THAN", "ListOptions", "parse_bool", "parse_list_options"]

NOT_OLDER_THAN = "NotOlderThan"
EXACT = "Exact"


def parse_bool(text: str | None) -> bool | None:
    """A query boolean as apimachinery converts it; None when absent.

    `Convert_Slice_string_To_bool`: "0" and "false" (any case) are false, and every other
    value, the empty string and "maybe" included, is true (checked against kube-apiserver).
    """
    if text is None:
        return None
    return not (text == "0" or text.lower() == "false")


@dataclass(frozen=True)
class ListOptions:
    watch: bool = False
    resource_version: str = ""
    resource_version_match: str = ""
    send_initial_events: bool | None = None
    allow_watch_bookmarks: bool = False
    continue_token: str = ""

    def defaulted(self) -> ListOptions:
        """`SetListOptionsDefaults`: a legacy watch from ""/"0" becomes a WatchList."""
        if self.send_initial_events is not None or self.resource_version_match:
            return self
        if self.watch and self.resource_version in ("", "0"):
            return replace(self, send_initial_events=True, resource_version_match=NOT_OLDER_THAN)
        return self

    def errors(self) -> list[dict[str, str]]:
        """`ValidateListOptions` causes (empty when valid)."""
        return self._watch_errors() if self.watch else self._list_errors()

    def _list_errors(self) -> list[dict[str, str]]:
        causes: list[dict[str, str]] = []
        match = self.resource_version_match
        if match:
            if not self.resource_version:
                causes.append(_forbidden(f"{_RVM} is forbidden unless resourceVersion is provided"))
            if self.continue_token:
                causes.append(_forbidden(f"{_RVM} is forbidden when continue is provided"))
            if match not in (EXACT, NOT_OLDER_THAN):
                causes.append(_not_supported(match, (EXACT, NOT_OLDER_THAN, "")))
            if match == EXACT and self.resource_version == "0":
                causes.append(_forbidden(f'{_RVM} "exact" is forbidden for resourceVersion "0"'))
        if self.send_initial_events is not None:
            causes.append(
                _forbidden("sendInitialEvents is forbidden for list", field="sendInitialEvents")
            )
        return causes

    def _watch_errors(self) -> list[dict[str, str]]:
        causes: list[dict[str, str]] = []
        match = self.resource_version_match
        if self.send_initial_events is not None and match != NOT_OLDER_THAN:
            causes.append(
                _forbidden(f"sendInitialEvents requires setting {_RVM} to {NOT_OLDER_THAN}")
            )
        if match:
            if self.send_initial_events is None:
                causes.append(
                    _forbidden(
                        f"{_RVM} is forbidden for watch unless sendInitialEvents is provided"
                    )
                )
            if match != NOT_OLDER_THAN:
                causes.append(_not_supported(match, (NOT_OLDER_THAN,)))
            if self.continue_token:
                causes.append(_forbidden(f"{_RVM} is forbidden when continue is provided"))
        return causes


_RVM = "resourceVersionMatch"


def _forbidden(detail: str, field: str = _RVM) -> dict[str, str]:
    return {"reason": "FieldValueForbidden", "message": f"Forbidden: {detail}", "field": field}


def _not_supported(value: str, supported: tuple[str, ...]) -> dict[str, str]:
    values = ", ".join(f'"{v}"' for v in supported)
    return {
        "reason": "FieldValueNotSupported",
        "message": f'Unsupported value: "{value}": supported values: {values}',
        "field": _RVM,
    }


def parse_list_options(query: Mapping[str, str], watch: bool) -> ListOptions:
    """Decode, default and validate; raise 422 for an invalid combination."""
    opts = ListOptions(
        watch=watch,
        resource_version=query.get("resourceVersion", ""),
        resource_version_match=query.get(_RVM, ""),
        send_initial_events=parse_bool(query.get("sendInitialEvents")),
        allow_watch_bookmarks=bool(parse_bool(query.get("allowWatchBookmarks"))),
        continue_token=query.get("continue", ""),
    ).defaulted()
    causes = opts.errors()
    if causes:
        raise invalid("ListOptions", "", causes, group="meta.k8s.io")
    return opts
