"""An output dir on persistent storage (issue 12, item 9) holds several trainings of one LLM:
each finds its own tokenizer there, as it finds its own checkpoints and MLflow run."""

from __future__ import annotations

from pathlib import Path

from kubellm.training.options import TrainOptions, resolve_options
from kubellm.training.trainer import build_pretrain, checkpoints_dir

DOCS_A = [f"support ticket {i}: the printer is out of toner again" for i in range(200)]
DOCS_B = [f"release note {i}: faster batching, fewer cold starts" for i in range(200)]


def _opts(tmp: Path, dataset: str) -> TrainOptions:
    return resolve_options(
        {
            "llm_name": "bot",
            "method": "pretrain",
            "architecture": "gpt2-tiny",
            "dataset": dataset,
            "tracking_uri": "sqlite:///unused.db",
            "output_dir": str(tmp / "checkpoints" / "bot"),
            "vocab_size": "300",
        },
        {},
    )


def test_each_training_keeps_its_own_tokenizer_in_a_shared_output_dir(tmp_path: Path) -> None:
    first = _opts(tmp_path, "a.txt")
    second = _opts(tmp_path, "b.txt")
    a = build_pretrain(first, DOCS_A)
    b = build_pretrain(second, DOCS_B)
    folders = sorted(p.name for p in (tmp_path / "checkpoints" / "bot").glob("tokenizer-*"))
    assert len(folders) == 2
    assert a.tokenizer.get_vocab() != b.tokenizer.get_vocab()  # B did not reuse A's
    # a replaced pod of the first training (same options) reuses its tokenizer
    again = build_pretrain(_opts(tmp_path, "a.txt"), DOCS_B)
    assert again.tokenizer.get_vocab() == a.tokenizer.get_vocab()
    assert checkpoints_dir(first).parent == checkpoints_dir(second).parent
    assert checkpoints_dir(first) != checkpoints_dir(second)
