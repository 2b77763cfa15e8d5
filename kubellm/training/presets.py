"""Architectures to pre-train from scratch: named presets or a transformers config JSON.

A preset names a shape, not weights: the vocabulary comes from the tokenizer trained on the
dataset, so the config is completed with the tokenizer's size and special token ids when the
model is built. ``gpt2-tiny`` is what CPU tests and the demo train in seconds; ``gpt2-small``
(12 x 768, ~85M parameters besides embeddings) is the GPU check's model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubellm.training.errors import BaseModelError

__all__ = ["PRESETS", "Preset", "architecture_config", "build_config", "max_positions"]


@dataclass(frozen=True)
class Preset:
    n_layer: int
    n_embd: int
    n_head: int
    n_positions: int

    def config_dict(self) -> dict[str, Any]:
        return {
            "model_type": "gpt2",
            "n_layer": self.n_layer,
            "n_embd": self.n_embd,
            "n_head": self.n_head,
            "n_positions": self.n_positions,
        }


PRESETS: dict[str, Preset] = {
    "gpt2-tiny": Preset(n_layer=2, n_embd=64, n_head=2, n_positions=256),
    "gpt2-mini": Preset(n_layer=4, n_embd=256, n_head=4, n_positions=512),
    "gpt2-small": Preset(n_layer=12, n_embd=768, n_head=12, n_positions=1024),
    "gpt2-medium": Preset(n_layer=24, n_embd=1024, n_head=16, n_positions=1024),
}


def architecture_config(architecture: str) -> dict[str, Any]:
    """The config dict of a preset name or a config JSON file (pure apart from reading it)."""
    preset = PRESETS.get(architecture)
    if preset is not None:
        return preset.config_dict()
    path = Path(architecture.removeprefix("file://"))
    if path.suffix != ".json" and not path.exists():
        raise BaseModelError(
            f"unknown architecture preset {architecture!r} "
            f"(presets: {', '.join(PRESETS)}; or the path of a config JSON)"
        )
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BaseModelError(f"architecture config {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise BaseModelError(f"architecture config {path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict) or "model_type" not in data:
        raise BaseModelError(f"architecture config {path} has no model_type")
    return data


def build_config(
    architecture: str, *, vocab_size: int, bos_id: int, eos_id: int, pad_id: int
) -> Any:
    """A transformers ``PretrainedConfig`` for ``architecture`` sized for the tokenizer."""
    from transformers import AutoConfig

    data = dict(architecture_config(architecture))
    model_type = data.pop("model_type")
    data.update(
        vocab_size=vocab_size, bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id
    )
    try:
        return AutoConfig.for_model(model_type, **data)
    except (ValueError, TypeError) as exc:
        raise BaseModelError(f"architecture {architecture!r}: {exc}") from None


def max_positions(config: Any) -> int | None:
    """The longest sequence the config supports, when it says."""
    for key in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
