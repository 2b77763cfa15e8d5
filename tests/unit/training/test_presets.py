"""Architecture presets and config JSON files for pre-training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubellm.training.errors import BaseModelError
from kubellm.training.presets import PRESETS, architecture_config, build_config, max_positions


def test_gpt2_tiny_is_two_layers_of_64() -> None:
    cfg = architecture_config("gpt2-tiny")
    assert (cfg["model_type"], cfg["n_layer"], cfg["n_embd"]) == ("gpt2", 2, 64)


def test_gpt2_small_is_about_a_hundred_million_parameters() -> None:
    p = PRESETS["gpt2-small"]
    non_embedding = 12 * p.n_layer * p.n_embd**2
    assert 80e6 < non_embedding < 100e6


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(BaseModelError, match=r"unknown architecture preset 'gpt5'.*gpt2-tiny"):
        architecture_config("gpt5")


def test_config_json_is_read_and_sized_for_the_tokenizer(tmp_path: Path) -> None:
    path = tmp_path / "arch.json"
    path.write_text(json.dumps({"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2}))
    config = build_config(str(path), vocab_size=300, bos_id=0, eos_id=0, pad_id=0)
    assert (config.n_layer, config.n_embd, config.vocab_size) == (1, 32, 300)
    assert max_positions(config) == 1024


def test_config_json_without_model_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "arch.json"
    path.write_text("{}")
    with pytest.raises(BaseModelError, match="has no model_type"):
        architecture_config(str(path))


def test_missing_config_json_is_named(tmp_path: Path) -> None:
    with pytest.raises(BaseModelError, match="does not exist"):
        architecture_config(str(tmp_path / "nope.json"))
