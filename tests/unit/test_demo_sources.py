"""Where `kubellm demo` finds its chart and example, and which LLM it then watches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kubellm import demo
from kubellm.demo import common


def test_the_demo_names_the_llm_its_manifest_names(tmp_path: Path) -> None:
    obj = yaml.safe_load((common.REPO / common.EXAMPLE).read_text())
    obj["metadata"]["name"] = "another-bot"
    (tmp_path / "examples").mkdir()
    example = tmp_path / "examples" / "mine.yaml"
    example.write_text(yaml.safe_dump(obj))
    manifest = demo.demo_manifest(example, root=tmp_path)
    assert demo.manifest_name(manifest) == "another-bot"
    uri = json.loads(manifest)["spec"]["training"]["dataset"]["uri"]
    assert uri == str((tmp_path / obj["spec"]["training"]["dataset"]["uri"]).resolve())


def test_a_manifest_without_a_name_ends_the_demo() -> None:
    with pytest.raises(demo.DemoFailure, match=r"metadata\.name"):
        demo.manifest_name(json.dumps({"kind": "LLM", "metadata": {}}))


def test_an_installed_wheels_copy_comes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "SHARE", tmp_path / "_share")
    assert common.share_root() == common.REPO  # a checkout: no copy beside the package
    assert (common.REPO / common.CHART / "Chart.yaml").is_file()
    assert (common.REPO / common.EXAMPLE).is_file()
    (tmp_path / "_share" / common.CHART).mkdir(parents=True)
    assert common.share_root() == tmp_path / "_share"
