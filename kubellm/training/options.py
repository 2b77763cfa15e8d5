"""The inputs of ``kubellm train``: flags, their environment fallbacks, and their validation.

The operator configures the training container through environment variables (one per
field of the LLM's training spec), a person at a shell through flags. Both land here. The
rule is mechanical so the operator's Job builder needs no table: flag ``--foo-bar`` falls
back to ``KUBELLM_FOO_BAR`` (the tracking URI also to MLflow's own ``MLFLOW_TRACKING_URI``).
A flag wins over the environment, the environment over the default.

Resolution and validation are one pure function of (flag values, environment), so every
message a user can see is unit-tested without training anything. Bounds match the CRD
(``kubellm.api.spec.HyperparametersSpec``) so a spec the API accepts is never refused here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kubellm.training.errors import OptionsError

__all__ = [
    "METHODS",
    "OPTIONS",
    "Option",
    "TrainOptions",
    "add_arguments",
    "env_name",
    "resolve_options",
]

METHODS = ("pretrain", "full", "lora")


@dataclass(frozen=True)
class TrainOptions:
    """Everything one training run needs, validated."""

    llm_name: str
    method: str
    dataset: str
    tracking_uri: str
    registered_model: str
    output_dir: Path
    base_model: str | None = None
    architecture: str | None = None
    text_field: str = "text"
    eval_fraction: float = 0.1
    epochs: float = 1.0
    max_steps: int | None = None
    learning_rate: float = 5e-4
    batch_size: int = 8
    sequence_length: int = 128
    gradient_accumulation: int = 1
    seed: int = 42
    lora_rank: int = 8
    lora_alpha: int = 16
    vocab_size: int = 1024
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    save_steps: int = 100
    save_total_limit: int = 2
    logging_steps: int = 10
    alias: str = "candidate"
    max_eval_loss: float | None = None
    log_adapter: bool = False
    generation: str | None = None
    experiment: str = "kubellm"
    precision: str = "auto"

    def params(self) -> dict[str, str]:
        """The run's parameters as MLflow wants them: flat strings, secrets-free."""
        skip = {"tracking_uri"}
        return {k: str(v) for k, v in asdict(self).items() if k not in skip and v is not None}

    def digest(self) -> str:
        """What makes two invocations *the same training*: every input except where and how
        often it writes. A restarted pod has the same digest and resumes; a changed spec
        has another and never picks up checkpoints or a run that are not its own."""
        operational = {"output_dir", "logging_steps", "save_steps", "save_total_limit"}
        kept = {k: v for k, v in sorted(self.params().items()) if k not in operational}
        kept["tracking_uri"] = self.tracking_uri
        return hashlib.sha256(json.dumps(kept).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Option:
    """One input: its flag, type, default, bounds and help."""

    dest: str
    help: str
    parse: Callable[[str], Any] = str
    default: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the low bound itself is not allowed
    choices: tuple[str, ...] | None = None
    extra_env: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.dest.replace("_", "-")


def env_name(dest: str) -> str:
    """``learning_rate`` -> ``KUBELLM_LEARNING_RATE``."""
    return "KUBELLM_" + dest.upper()


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


OPTIONS: tuple[Option, ...] = (
    Option("llm_name", "name of the LLM resource this run trains (tags the version)"),
    Option("method", "pretrain | full | lora", default="full", choices=METHODS),
    Option("base_model", "full/lora: models:/NAME@ALIAS, models:/NAME/VERSION, dir or hub id"),
    Option("architecture", "pretrain: a preset (gpt2-tiny, gpt2-mini, gpt2-small) or config JSON"),
    Option("dataset", "file://, a path to .txt/.jsonl (or a folder of them), s3://, hub id"),
    Option("text_field", "field holding the text in .jsonl and hub datasets", default="text"),
    Option("eval_fraction", "fraction of examples held out for evaluation", _float, 0.1, 0, 0.5),
    Option(
        "epochs",
        "passes over the data (ignored when --max-steps is set)",
        _float,
        1.0,
        0,
        1000,
        low_open=True,
    ),
    Option("max_steps", "optimizer steps; overrides --epochs", int, None, 1, 10_000_000),
    Option("learning_rate", "peak learning rate", _float, 5e-4, 0, 1, low_open=True),
    Option("batch_size", "per-device micro-batch size", int, 8, 1, 4096),
    Option("sequence_length", "tokens per training example", int, 128, 8, 131_072),
    Option("gradient_accumulation", "micro-batches per optimizer step", int, 1, 1, 1024),
    Option("seed", "random seed", int, 42, 0, 2**31 - 1),
    Option("lora_rank", "LoRA rank (method lora)", int, 8, 1, 1024),
    Option("lora_alpha", "LoRA alpha (method lora)", int, 16, 1, 4096),
    Option(
        "vocab_size",
        "tokenizer vocabulary trained on the data (pretrain)",
        int,
        1024,
        256,
        1_000_000,
    ),
    Option("warmup_ratio", "fraction of steps warming up the learning rate", _float, 0.0, 0, 0.9),
    Option("weight_decay", "AdamW weight decay", _float, 0.0, 0, 1),
    Option(
        "save_steps", "checkpoint every N optimizer steps (resume point)", int, 100, 1, 10_000_000
    ),
    Option("save_total_limit", "checkpoints kept in the output dir", int, 2, 1, 1000),
    Option("logging_steps", "metrics and a progress line every N steps", int, 10, 1, 1_000_000),
    Option("output_dir", "checkpoints, tokenizer and the downloaded base model", Path),
    Option("tracking_uri", "MLflow tracking URI", extra_env=("MLFLOW_TRACKING_URI",)),
    Option("experiment", "MLflow experiment name", default="kubellm"),
    Option("registered_model", "registered model name (default: the LLM name)"),
    Option("alias", "registry alias set on the new version", default="candidate"),
    Option("generation", "metadata.generation of the LLM (tags the version)"),
    Option(
        "max_eval_loss",
        "quality gate: register nothing when eval loss is higher",
        _float,
        None,
        0,
        None,
        low_open=True,
    ),
    Option("log_adapter", "lora: log the adapter instead of the merged model", _bool, False),
    Option(
        "precision",
        "auto (bf16 on a GPU that has it) | bf16 | fp16 | fp32",
        default="auto",
        choices=("auto", "bf16", "fp16", "fp32"),
    ),
)

_BY_DEST = {o.dest: o for o in OPTIONS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per option; defaults stay None so the environment can fill them."""
    for opt in OPTIONS:
        envs = ", ".join((env_name(opt.dest), *opt.extra_env))
        default = "" if opt.default is None else f"; default {opt.default}"
        if opt.parse is _bool:
            parser.add_argument(
                opt.flag,
                dest=opt.dest,
                action="store_const",
                const="true",
                default=None,
                help=f"{opt.help} (env {envs})",
            )
            continue
        parser.add_argument(
            opt.flag,
            dest=opt.dest,
            default=None,
            metavar=opt.dest.upper(),
            help=f"{opt.help} (env {envs}{default})",
        )


def _raw(opt: Option, flags: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[Any, str]:
    """The raw value and where it came from (for error messages)."""
    value = flags.get(opt.dest)
    if value is not None:
        return value, opt.flag
    for name in (env_name(opt.dest), *opt.extra_env):
        text = environ.get(name)
        if text is not None and text.strip() != "":
            return text.strip(), name
    return None, opt.flag


def _check(opt: Option, value: Any, origin: str) -> Any:
    if isinstance(value, str):
        try:
            value = opt.parse(value)
        except (TypeError, ValueError):
            raise OptionsError(f"{origin}: {value!r} is not a valid {opt.dest}") from None
    if opt.choices is not None and value not in opt.choices:
        raise OptionsError(f"{origin}: {value!r} is not one of {', '.join(opt.choices)}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        low_bad = opt.low is not None and (value < opt.low or (opt.low_open and value == opt.low))
        high_bad = opt.high is not None and value > opt.high
        if low_bad or high_bad:
            low = "" if opt.low is None else ("> " if opt.low_open else ">= ") + f"{opt.low:g}"
            high = "" if opt.high is None else f"<= {opt.high:g}"
            bounds = " and ".join(b for b in (low, high) if b)
            raise OptionsError(f"{origin}: {value} is out of range (must be {bounds})")
    return value


def resolve_options(flags: Mapping[str, Any], environ: Mapping[str, str]) -> TrainOptions:
    """Merge flags over environment over defaults; validate; raise ``OptionsError``."""
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        raw, origin = _raw(opt, flags, environ)
        values[opt.dest] = opt.default if raw is None else _check(opt, raw, origin)

    def need(dest: str, why: str) -> None:
        if not values.get(dest):
            opt = _BY_DEST[dest]
            envs = " or ".join((env_name(dest), *opt.extra_env))
            raise OptionsError(f"{opt.flag} (or {envs}) is required{why}")

    need("dataset", "")
    need("tracking_uri", ": training registers its model in MLflow")
    method = values["method"]
    if method == "pretrain":
        need("architecture", " for --method pretrain")
        if values["base_model"]:
            raise OptionsError("--base-model is for full/lora; pretrain starts from --architecture")
    else:
        need("base_model", f" for --method {method}")
    if values["log_adapter"] and method != "lora":
        raise OptionsError("--log-adapter only applies to --method lora")
    if not values["llm_name"] and not values["registered_model"]:
        raise OptionsError("--llm-name (or KUBELLM_LLM_NAME) or --registered-model is required")
    values["llm_name"] = values["llm_name"] or values["registered_model"]
    values["registered_model"] = values["registered_model"] or values["llm_name"]
    if values["output_dir"] is None:
        values["output_dir"] = Path("kubellm-train") / values["llm_name"]
    values["output_dir"] = Path(values["output_dir"])
    return TrainOptions(**values)
