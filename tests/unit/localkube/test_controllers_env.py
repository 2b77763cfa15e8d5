"""$(VAR) expansion, env building and mount-path mapping, as the kubelet does them."""

from __future__ import annotations

import base64

import pytest

from localkube.controllers.env import EnvError, Sources, build_env, expand, map_paths

INDEX = "metadata.annotations['batch.kubernetes.io/job-completion-index']"

POD = {
    "metadata": {
        "name": "p1",
        "namespace": "ns1",
        "uid": "u-1",
        "labels": {"app": "web"},
        "annotations": {"batch.kubernetes.io/job-completion-index": "3"},
    },
    "spec": {"nodeName": "localkube-node"},
}
SOURCES = Sources(
    configmaps={"cfg": {"data": {"MODE": "fast", "LEVEL": "2"}}},
    secrets={"sec": {"data": {"TOKEN": base64.b64encode(b"s3cret").decode()}}},
)


def test_expand_substitutes_known_vars_and_keeps_unknown_ones():
    assert expand("--host $(POD_IP) --x $(NOPE)", {"POD_IP": "127.64.0.9"}) == (
        "--host 127.64.0.9 --x $(NOPE)"
    )


def test_expand_double_dollar_escapes_a_reference():
    assert expand("$$(POD_IP) costs $$5 and $", {"POD_IP": "x"}) == "$(POD_IP) costs $5 and $"


def test_expand_unterminated_reference_is_literal():
    assert expand("a $(B", {"B": "1"}) == "a $(B"


def test_env_values_expand_against_earlier_vars_only():
    container = {
        "env": [
            {"name": "A", "value": "1"},
            {"name": "B", "value": "$(A)-$(C)"},
            {"name": "C", "value": "3"},
        ]
    }
    env = build_env(container, POD, "127.64.0.1", SOURCES)
    assert env["B"] == "1-$(C)"


def test_env_from_then_env_with_value_from_sources():
    container = {
        "envFrom": [
            {"configMapRef": {"name": "cfg"}, "prefix": "CFG_"},
            {"secretRef": {"name": "sec"}},
        ],
        "env": [
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {
                "name": "IDX",
                "valueFrom": {"fieldRef": {"fieldPath": INDEX}},
            },
            {"name": "LVL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "LEVEL"}}},
            {"name": "TOK", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "TOKEN"}}},
            {"name": "CFG_MODE", "value": "overridden"},
        ],
    }
    env = build_env(container, POD, "127.64.0.7", SOURCES, base={"PATH": "/bin"})
    assert env["PATH"] == "/bin"
    assert env["CFG_LEVEL"] == "2" and env["TOKEN"] == "s3cret"
    assert env["POD_IP"] == "127.64.0.7"
    assert (env["NAME"], env["NS"], env["APP"], env["IDX"]) == ("p1", "ns1", "web", "3")
    assert env["LVL"] == "2" and env["TOK"] == "s3cret"
    assert env["CFG_MODE"] == "overridden"


def test_missing_config_map_key_is_an_error_unless_optional():
    missing = {
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "NOPE"}}}]
    }
    with pytest.raises(EnvError):
        build_env(missing, POD, "127.64.0.1", SOURCES)
    missing["env"][0]["valueFrom"]["configMapKeyRef"]["optional"] = True
    assert "X" not in build_env(missing, POD, "127.64.0.1", SOURCES)


def test_mount_paths_are_rewritten_only_as_whole_path_prefixes():
    mounts = {"/data": "/tmp/pod/volumes/data", "/data/models": "/tmp/claims/models"}
    assert map_paths("/data/x.txt", mounts) == "/tmp/pod/volumes/data/x.txt"
    assert map_paths("--out=/data", mounts) == "--out=/tmp/pod/volumes/data"
    assert map_paths("/data/models/m1", mounts) == "/tmp/claims/models/m1"
    assert map_paths("cat /data/a > /dev/null", mounts) == "cat /tmp/pod/volumes/data/a > /dev/null"
    assert map_paths("/database", mounts) == "/database"
    assert map_paths("s3://bucket/data/x", mounts) == "s3://bucket/data/x"


def test_existing_host_paths_under_a_mount_path_are_left_alone(tmp_path) -> None:
    tool = tmp_path / "venv" / "bin" / "python"
    tool.parent.mkdir(parents=True)
    tool.write_text("")
    mounts = {str(tmp_path): "/pods/p1/volumes/tmp"}
    assert map_paths(str(tool), mounts) == str(tool)
    assert (
        map_paths(f"{tmp_path}/scratch/out.json", mounts) == "/pods/p1/volumes/tmp/scratch/out.json"
    )
    assert map_paths(str(tmp_path), mounts) == "/pods/p1/volumes/tmp"
