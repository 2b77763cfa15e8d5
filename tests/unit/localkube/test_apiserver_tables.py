"""Tables for kubectl get: JSONPath subset, ages, built-in and CRD columns."""

from __future__ import annotations

from localkube.apiserver.kinds import Registry, ResourceKind
from localkube.apiserver.tables import build_table, human_age, jsonpath_values

OBJ = {
    "metadata": {"name": "w", "namespace": "ns", "labels": {"a": "b"}},
    "status": {
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}],
        "items": [{"n": 1}, {"n": 2}],
    },
}


def test_jsonpath_subset_used_by_printer_columns() -> None:
    assert jsonpath_values(OBJ, '.status.conditions[?(@.type=="Ready")].status') == ["True"]
    assert jsonpath_values(OBJ, ".status.conditions[?(@.type!='Ready')].type") == ["Synced"]
    assert jsonpath_values(OBJ, "{.status.items[*].n}") == [1, 2]
    assert jsonpath_values(OBJ, ".status.items[1].n") == [2]
    assert jsonpath_values(OBJ, ".status.missing.x") == []


def test_human_age_matches_kubectl() -> None:
    assert [human_age(s) for s in (7, 119, 150, 600, 4000, 90000, 400000)] == [
        "7s", "119s", "2m30s", "10m", "66m", "25h", "4d15h",
    ]  # fmt: skip


def _widgets(columns: list[dict[str, object]]) -> ResourceKind:
    return ResourceKind(
        group="example.com",
        versions=("v1",),
        plural="widgets",
        singular="widget",
        kind="Widget",
        namespaced=True,
        builtin=False,
        printer_columns={"v1": columns} if columns else {},
    )


def test_crd_table_has_name_and_printer_columns_with_row_metadata() -> None:
    kind = ResourceKind(
        group="example.com",
        versions=("v1",),
        plural="widgets",
        singular="widget",
        kind="Widget",
        namespaced=True,
        builtin=False,
        printer_columns={
            "v1": [
                {
                    "name": "Ready",
                    "type": "string",
                    "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                },
                {"name": "Wide", "type": "string", "jsonPath": ".status.x", "priority": 1},
            ]
        },
    )
    table = build_table(kind, "v1", [OBJ], "9")
    # kube-apiserver adds no Age column to a CRD that declares printer columns
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Ready", "Wide"]
    assert table["columnDefinitions"][2]["priority"] == 1
    assert table["columnDefinitions"][2]["description"] == (
        "Custom resource definition column (in JSONPath format): .status.x"
    )
    row = table["rows"][0]
    assert row["cells"][:3] == ["w", "True", None]
    assert row["object"]["metadata"]["namespace"] == "ns" and row["object"]["metadata"]["labels"]


def test_crd_without_printer_columns_prints_age() -> None:
    table = build_table(_widgets([]), "v1", [OBJ], "9")
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [
        ("Name", "string"),
        ("Age", "date"),
    ]


def test_crd_list_cells_are_compact_json_and_dates_are_ages() -> None:
    columns: list[dict[str, object]] = [
        {"name": "Items", "type": "string", "jsonPath": ".status.items"},
        {"name": "Made", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    obj = {**OBJ, "metadata": {**OBJ["metadata"], "creationTimestamp": "2020-01-01T00:00:00Z"}}
    row = build_table(_widgets(columns), "v1", [obj], "9")["rows"][0]
    assert row["cells"][1] == '[{"n":1},{"n":2}]'
    assert row["cells"][2].endswith("y")


def test_pod_table_shows_ready_status_and_restarts() -> None:
    pods = Registry().get("/pods")
    assert pods is not None
    pod = {
        "metadata": {"name": "p", "creationTimestamp": "2020-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "c"}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [{"ready": True, "restartCount": 2, "state": {"running": {}}}],
        },
    }
    cells = build_table(pods, "v1", [pod], "1")["rows"][0]["cells"]
    assert cells[:4] == ["p", "1/1", "Running", "2"]
