"""Throughput of `kubellm train` against a plain transformers Trainer script, in one run.

Both train the same architecture preset on the same text with the same hyperparameters, each
in its own fresh process, alternating, ``--repeats`` times; tokens/s is
optimizer steps x global batch x sequence length / wall time of ``Trainer.train()``. The
wrapper (MLflow run, per-step metrics, progress lines, checkpoints) should cost nothing
measurable: the target is a ratio >= 0.95.

    .venv/bin/python bench/training.py                    # CPU, gpt2-tiny, 100 steps
    python bench/training.py --preset gpt2-small --batch-size 16 --sequence-length 1024 \
        --precision bf16 --steps 100 --repeats 1          # a GPU

On a shared CPU both sides run with ``--threads`` torch threads (default 1): two OpenMP
threads on two busy cores spin against other processes and make every figure noise, while
the wrapper's own cost does not depend on the thread count.

``--plain-worker`` runs only the plain script and prints its JSON (used by the bench
itself and by bench/gpu_train_check.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "examples" / "data" / "support-corpus.txt"


def plain_worker(args: argparse.Namespace) -> dict:
    """The script a user would write with transformers alone."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        PreTrainedTokenizerFast,
        Trainer,
        TrainingArguments,
        default_data_collator,
        set_seed,
    )

    sys.path.insert(0, str(REPO))
    from kubellm.training.presets import PRESETS  # the shape only; no kubellm code path

    lines = [ln.strip() for ln in Path(args.dataset).read_text().splitlines() if ln.strip()]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        lines, vocab_size=args.vocab_size, min_frequency=2, special_tokens=["<|endoftext|>"]
    )
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>")
    stream: list[int] = []
    for ids in tok(lines, add_special_tokens=False)["input_ids"]:
        stream.extend(ids)
        stream.append(tok.eos_token_id)
    n = args.sequence_length
    blocks = torch.tensor(stream[: len(stream) // n * n]).view(-1, n)

    class Blocks(torch.utils.data.Dataset):
        def __len__(self):
            return blocks.shape[0]

        def __getitem__(self, i):
            return {"input_ids": blocks[i], "labels": blocks[i]}

    preset = PRESETS[args.preset].config_dict()
    model_type = preset.pop("model_type")
    config = AutoConfig.for_model(model_type, vocab_size=len(tok), **preset)
    set_seed(args.seed)
    model = AutoModelForCausalLM.from_config(config)
    cuda = torch.cuda.is_available()
    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=args.batch_size,
            max_steps=args.steps,
            learning_rate=args.learning_rate,
            logging_steps=args.logging_steps,
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
            use_cpu=not cuda,
            bf16=args.precision == "bf16",
            seed=args.seed,
        )
        trainer = Trainer(
            model=model, args=targs, train_dataset=Blocks(), data_collator=default_data_collator
        )
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    tokens = args.steps * args.batch_size * n
    return {
        "tokens_per_second": tokens / seconds,
        "train_seconds": seconds,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def run_plain(args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--plain-worker", *_common(args)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, check=False)
    if out.returncode != 0:
        raise SystemExit(f"plain Trainer script failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_kubellm(args: argparse.Namespace, tmp: Path, index: int) -> dict:
    from localkube.testing.mlflow import sqlite_tracking_uri

    uri = sqlite_tracking_uri(tmp)
    cmd = [
        sys.executable, "-m", "kubellm.training",
        "--llm-name", "bench", "--method", "pretrain", "--architecture", args.preset,
        "--dataset", args.dataset, "--tracking-uri", uri,
        "--output-dir", str(tmp / f"out-{index}"),
        "--max-steps", str(args.steps), "--batch-size", str(args.batch_size),
        "--sequence-length", str(args.sequence_length), "--learning-rate", str(args.learning_rate),
        "--vocab-size", str(args.vocab_size), "--seed", str(args.seed),
        "--logging-steps", str(args.logging_steps), "--save-steps", str(args.save_steps),
        "--precision", args.precision, "--eval-fraction", "0.05",
    ]  # fmt: skip
    env = dict(os.environ, KUBELLM_TERMINATION_LOG=str(tmp / f"summary-{index}.json"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=args.timeout, env=env, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"kubellm train failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads((tmp / f"summary-{index}.json").read_text())


def _common(args: argparse.Namespace) -> list[str]:
    return [
        "--preset", args.preset, "--dataset", args.dataset, "--steps", str(args.steps),
        "--batch-size", str(args.batch_size), "--sequence-length", str(args.sequence_length),
        "--learning-rate", str(args.learning_rate), "--vocab-size", str(args.vocab_size),
        "--seed", str(args.seed), "--logging-steps", str(args.logging_steps),
        "--precision", args.precision,
    ]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="gpt2-tiny")
    p.add_argument("--dataset", default=str(CORPUS))
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--sequence-length", type=int, default=128)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--vocab-size", type=int, default=1024)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--logging-steps", type=int, default=10)
    p.add_argument("--save-steps", type=int, default=100, help="kubellm checkpoints (resume)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for both sides")
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--plain-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.plain_worker:
        print(json.dumps(plain_worker(args)))
        return

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by both subprocesses
    plain: list[float] = []
    ours: list[float] = []
    with tempfile.TemporaryDirectory(prefix="kubellm-bench-") as tmp:
        for i in range(args.repeats):  # interleaved, order swapped: noise hits both alike
            if i % 2:
                ours.append(run_kubellm(args, Path(tmp), i)["tokens_per_second"])
                plain.append(run_plain(args)["tokens_per_second"])
            else:
                plain.append(run_plain(args)["tokens_per_second"])
                ours.append(run_kubellm(args, Path(tmp), i)["tokens_per_second"])
            print(f"repeat {i + 1}: plain {plain[-1]:,.0f} tokens/s, "
                  f"kubellm train {ours[-1]:,.0f} tokens/s", flush=True)  # fmt: skip
    p_med, o_med = statistics.median(plain), statistics.median(ours)
    ratio = o_med / p_med
    print(
        f"{args.preset} {args.steps} steps x {args.batch_size} x {args.sequence_length} "
        f"({args.precision}): plain Trainer {p_med:,.0f} tokens/s, kubellm train "
        f"{o_med:,.0f} tokens/s (medians of {args.repeats})"
    )
    print(f"ratio kubellm/plain = {ratio:.3f} (target >= 0.95): {'OK' if ratio >= 0.95 else 'LOW'}")


if __name__ == "__main__":
    main()
