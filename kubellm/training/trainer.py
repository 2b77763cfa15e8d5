"""The model side of a training: weights to start from, token blocks, and the Trainer.

transformers' Trainer (on accelerate) is what lets one code path run on a CPU, one GPU in
bf16 and many GPUs or nodes under ``torchrun`` (DDP): it reads ``RANK``/``WORLD_SIZE`` from
the environment torchrun sets, so nothing here branches on the hardware except the choice
of precision. Checkpoints go to ``<output_dir>/checkpoints-<digest>``; when one exists the
Trainer resumes from it (weights, optimizer, scheduler, RNG and data position), so a
restarted pod continues instead of starting over. Only the main process writes
checkpoints, so for several nodes the output dir must be storage they share (a
ReadWriteMany volume); on one node any persistent volume will do.

Work that must happen once per node (downloading the base model, training the tokenizer)
runs on the local main process first; the other ranks then find it on disk.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubellm.registry import ModelNotFound, Registry
from kubellm.training.data import pack_blocks
from kubellm.training.errors import BaseModelError, DatasetError, OptionsError
from kubellm.training.options import TrainOptions
from kubellm.training.presets import build_config, max_positions

__all__ = [
    "Prepared",
    "TrainOutcome",
    "apply_lora",
    "build_trainer",
    "checkpoints_dir",
    "is_main_process",
    "load_base",
    "precision_flags",
    "prepare_model",
    "tokenize_blocks",
    "training_arguments",
    "world_size",
]

log = logging.getLogger(__name__)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Rank 0 of the whole job (torchrun sets RANK; a plain process is rank 0)."""
    return int(os.environ.get("RANK", "0")) == 0


def checkpoints_dir(opts: TrainOptions) -> Path:
    """Checkpoints of *this* training (named by its digest): every rank computes the same
    path, and a changed spec in the same output dir starts fresh instead of resuming."""
    return opts.output_dir / f"checkpoints-{opts.digest()}"


def precision_flags(precision: str, *, cuda: bool, bf16_supported: bool) -> dict[str, bool]:
    """Trainer's ``bf16``/``fp16`` flags: ``auto`` means bf16 on a GPU that has it, fp16 on an
    older GPU, full precision on a CPU (where bf16 autocast is slower than fp32)."""
    if precision == "auto":
        if cuda and bf16_supported:
            return {"bf16": True, "fp16": False}
        return {"bf16": False, "fp16": cuda}
    if precision == "fp16" and not cuda:
        raise OptionsError("--precision fp16 needs a GPU (use bf16 or fp32 on a CPU)")
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def training_arguments(opts: TrainOptions) -> Any:
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    flags = precision_flags(
        opts.precision, cuda=cuda, bf16_supported=cuda and torch.cuda.is_bf16_supported()
    )
    return TrainingArguments(
        output_dir=str(checkpoints_dir(opts)),
        per_device_train_batch_size=opts.batch_size,
        per_device_eval_batch_size=opts.batch_size,
        gradient_accumulation_steps=opts.gradient_accumulation,
        learning_rate=opts.learning_rate,
        weight_decay=opts.weight_decay,
        warmup_steps=opts.warmup_ratio,
        num_train_epochs=opts.epochs,
        max_steps=opts.max_steps if opts.max_steps is not None else -1,
        seed=opts.seed,
        logging_strategy="steps",
        logging_steps=opts.logging_steps,
        save_strategy="steps",
        save_steps=opts.save_steps,
        save_total_limit=opts.save_total_limit,
        eval_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=not cuda,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
        bf16=flags["bf16"],
        fp16=flags["fp16"],
    )


@dataclass
class Prepared:
    model: Any
    tokenizer: Any
    base_ref: str | None  # what the weights came from (registry version, dir, hub id)
    n_positions: int | None = None


def _download_registry_model(opts: TrainOptions, uri: str) -> tuple[Path, str]:
    """Download ``models:/...`` into the output dir once; a resumed run reuses it."""
    registry = Registry(opts.tracking_uri)
    try:
        name, version = registry.resolve_uri(uri)
    except ModelNotFound as exc:
        raise BaseModelError(f"base model {uri} not found in the registry: {exc}") from None
    except ValueError as exc:
        raise BaseModelError(str(exc)) from None
    ref = f"models:/{name}/{version}"
    dst = opts.output_dir / "base-model" / f"{name}-v{version}"
    marker = dst / ".complete"
    if not marker.exists():
        try:
            model_dir = registry.download_model(ref, dst)
        except ModelNotFound as exc:
            raise BaseModelError(f"base model {uri}: {exc}") from None
        marker.write_text(str(model_dir))
    return Path(marker.read_text()), ref


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json")


def tokenizer_dir(model_dir: Path) -> Path:
    """Where the tokenizer of a model folder lies: beside the weights (``save_pretrained``)
    or, for a model logged with MLflow's transformers flavor, in ``../components/tokenizer``."""
    if any((model_dir / name).exists() for name in _TOKENIZER_FILES):
        return model_dir
    candidate = model_dir.parent / "components" / "tokenizer"
    return candidate if candidate.is_dir() else model_dir


def load_base(opts: TrainOptions) -> Prepared:
    """Weights and tokenizer of ``--base-model``: registry URI, local directory or hub id."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = opts.base_model or ""
    if base.startswith("models:/"):
        source, ref = _download_registry_model(opts, base)
        where = str(source)
    else:
        path = Path(base.removeprefix("file://")).expanduser()
        if path.exists() or base.startswith(("/", ".", "file://")):
            if not (path / "config.json").exists():
                raise BaseModelError(f"base model {base}: no config.json (not a model folder)")
            where, ref = str(path), str(path)
        else:
            where, ref = base, base  # a hub id; needs network (or the local hub cache)
    tok_where = str(tokenizer_dir(Path(where))) if Path(where).is_dir() else where
    try:
        tokenizer = AutoTokenizer.from_pretrained(tok_where)
        model = AutoModelForCausalLM.from_pretrained(where)
    except Exception as exc:  # OSError, ValueError, safetensors errors: all say "unreadable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BaseModelError(f"cannot load base model {base}: {first}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return Prepared(model, tokenizer, ref, max_positions(model.config))


def build_pretrain(opts: TrainOptions, documents: Sequence[str]) -> Prepared:
    """A fresh model of ``--architecture`` and a tokenizer trained on ``documents``."""
    from transformers import AutoModelForCausalLM, set_seed

    from kubellm.training.tokenizer import load_or_train_tokenizer

    assert opts.architecture is not None
    # Keyed like the checkpoints: on persistent storage, another training (other data or
    # vocabulary) in the same output dir must not pick up this one's tokenizer.
    folder = opts.output_dir / f"tokenizer-{opts.digest()}"
    tokenizer = load_or_train_tokenizer(folder, documents, opts.vocab_size)
    config = build_config(
        opts.architecture,
        vocab_size=len(tokenizer),
        bos_id=tokenizer.bos_token_id,
        eos_id=tokenizer.eos_token_id,
        pad_id=tokenizer.pad_token_id,
    )
    set_seed(opts.seed)
    model = AutoModelForCausalLM.from_config(config)
    return Prepared(model, tokenizer, None, max_positions(config))


def prepare_model(opts: TrainOptions, documents: Sequence[str], args: Any) -> Prepared:
    """Load or build the model; node-wide work happens on the local main process first."""
    with args.main_process_first(local=True, desc="model preparation"):
        prepared = (
            build_pretrain(opts, documents) if opts.method == "pretrain" else (load_base(opts))
        )
    if prepared.n_positions is not None and opts.sequence_length > prepared.n_positions:
        raise OptionsError(
            f"--sequence-length {opts.sequence_length} exceeds the model's "
            f"{prepared.n_positions} positions"
        )
    return prepared


def apply_lora(model: Any, opts: TrainOptions) -> Any:
    """Wrap ``model`` with LoRA adapters on its attention projections (peft's defaults per
    architecture; every linear layer when peft does not know the architecture)."""
    from peft import LoraConfig, get_peft_model
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as TARGETS

    model_type = getattr(model.config, "model_type", "")
    config = LoraConfig(
        task_type="CAUSAL_LM",
        r=opts.lora_rank,
        lora_alpha=opts.lora_alpha,
        lora_dropout=0.05,
        target_modules=None if model_type in TARGETS else "all-linear",
        fan_in_fan_out=model_type == "gpt2",  # GPT-2 uses Conv1D (transposed weights)
    )
    return get_peft_model(model, config)


def tokenize_blocks(
    tokenizer: Any, train_docs: Sequence[str], eval_docs: Sequence[str], block_size: int
) -> tuple[list[list[int]], list[list[int]]]:
    """Token blocks of exactly ``block_size`` for training and evaluation."""

    def ids(docs: Sequence[str]) -> list[list[int]]:
        if not docs:
            return []
        return list(tokenizer(list(docs), add_special_tokens=False)["input_ids"])

    eos = tokenizer.eos_token_id
    train = pack_blocks(ids(train_docs), block_size, eos)
    held = pack_blocks(ids(eval_docs), block_size, eos)
    if eval_docs and not held and len(train) >= 2:
        held = [train.pop()]  # too little held-out text for one block: hold out a train block
    if not train:
        raise DatasetError(
            f"dataset too small: fewer than {block_size} training tokens "
            "(lower --sequence-length or add text)"
        )
    return train, held


class _Blocks:
    """A map-style dataset of fixed-length token blocks (labels = inputs; the model shifts)."""

    def __init__(self, blocks: list[list[int]]) -> None:
        import torch

        self.data = torch.tensor(blocks, dtype=torch.long)

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = self.data[i]
        # No attention_mask: blocks are packed (never padded), and without a mask SDPA takes
        # its causal fast path instead of checking a mask of ones on every forward.
        return {"input_ids": row, "labels": row}


@dataclass
class TrainOutcome:
    global_step: int
    max_steps: int
    steps_run: int
    resumed_from_step: int
    train_seconds: float
    tokens_per_second: float | None
    train_loss: float | None
    initial_eval_loss: float | None
    eval_loss: float | None
    log_history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def perplexity(self) -> float | None:
        if self.eval_loss is None:
            return None
        return math.exp(min(self.eval_loss, 700.0))


def build_trainer(
    model: Any,
    tokenizer: Any,
    args: Any,
    train_blocks: list[list[int]],
    eval_blocks: list[list[int]],
    callbacks: list[Any],
) -> Any:
    from transformers import PrinterCallback, Trainer, default_data_collator

    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=_Blocks(train_blocks),
        eval_dataset=_Blocks(eval_blocks) if eval_blocks else None,
        data_collator=default_data_collator,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # our progress lines replace its raw dicts
    return trainer


def last_checkpoint(opts: TrainOptions) -> str | None:
    """The newest *complete* checkpoint: a pod killed while saving leaves a folder without
    ``trainer_state.json`` (written last), which must not be resumed from."""
    folder = checkpoints_dir(opts)
    if not folder.is_dir():
        return None
    found = []
    for path in folder.glob("checkpoint-*"):
        suffix = path.name.removeprefix("checkpoint-")
        if suffix.isdigit() and (path / "trainer_state.json").is_file():
            found.append((int(suffix), path))
    return str(max(found)[1]) if found else None


def run_trainer(trainer: Any, opts: TrainOptions, clock: Any, on_initial_eval: Any) -> TrainOutcome:
    """Evaluate (fresh runs), train (resuming when a checkpoint exists), evaluate again."""
    resume = last_checkpoint(opts)
    has_eval = trainer.eval_dataset is not None
    initial = None
    if has_eval and resume is None:
        initial = float(trainer.evaluate()["eval_loss"])
        on_initial_eval(initial)
    if resume:
        log.info("resuming from %s", resume)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - started
    state = trainer.state
    first = clock.first_step or 0
    steps_run = state.global_step - first
    tokens = steps_run * clock.tokens_per_step
    losses = [h["loss"] for h in state.log_history if "loss" in h]
    final_eval = float(trainer.evaluate()["eval_loss"]) if has_eval else None
    return TrainOutcome(
        global_step=state.global_step,
        max_steps=state.max_steps,
        steps_run=steps_run,
        resumed_from_step=first,
        train_seconds=seconds,
        tokens_per_second=tokens / seconds if seconds > 0 and steps_run else None,
        train_loss=float(losses[-1]) if losses else float(result.training_loss),
        initial_eval_loss=initial,
        eval_loss=final_eval,
        log_history=list(state.log_history),
    )
