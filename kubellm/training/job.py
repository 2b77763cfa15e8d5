"""One training, start to finish: the order of steps and what happens when one fails.

    registry reachable? -> open run -> data -> model -> train -> eval -> gate -> log + register

Each step may fail; whatever fails, the run ends FAILED (KILLED on a signal) with the error
as a tag, and no model version is left behind. A run whose version was already registered
(the pod died after registering, before reporting) is not trained twice: the recorded
result is reported again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kubellm.api.results import TrainingOutcome, TrainingSummary
from kubellm.registry import Registry
from kubellm.training.errors import OptionsError, QualityGateFailed
from kubellm.training.options import TrainOptions

__all__ = ["Terminated", "run_job"]

log = logging.getLogger(__name__)


class Terminated(BaseException):
    """SIGTERM arrived (the pod is being deleted): stop and mark the run KILLED."""


def _quiet(*_: Any, **__: Any) -> None:
    pass


def _round(value: float | None, digits: int = 5) -> float | None:
    return None if value is None else round(value, digits)


def run_job(
    opts: TrainOptions,
    *,
    print_fn: Callable[..., None] = print,
    context: dict[str, Any] | None = None,
) -> TrainingSummary:
    """Train, log and register; return the summary (raises on failure, after cleaning up).

    ``context`` receives ``run_id`` as soon as the run exists, so a failure report names it.
    """
    from kubellm.training.trainer import is_main_process

    started = time.monotonic()
    if not is_main_process():
        print_fn = _quiet  # one copy of each line in the logs: rank 0's
    if opts.max_eval_loss is not None and opts.eval_fraction == 0:
        raise OptionsError("--max-eval-loss needs an eval split (--eval-fraction > 0)")
    tracker = None
    if is_main_process():
        from kubellm.training.tracking import Tracker

        registry = Registry(opts.tracking_uri)
        registry.ping()  # RegistryUnavailable before any work
        tracker = Tracker(opts, registry)
        done = tracker.read_state()
        if done.get("model_version") and done.get("summary"):
            print_fn(f"already registered as version {done['model_version']}; not retraining")
            return TrainingSummary.model_validate(done["summary"])
        tracker.start()
        if context is not None:
            context["run_id"] = tracker.run_id
        print_fn(f"mlflow run {tracker.run_id}" + (" (resumed)" if tracker.resumed_run else ""))
    try:
        summary = _train(opts, tracker, print_fn).model_copy(
            update={"duration_seconds": round(time.monotonic() - started, 2)}
        )
        if tracker is not None:
            tracker.write_state(model_version=summary.model_version, summary=summary.dump())
            tracker.end("FINISHED")
        return summary
    except BaseException as exc:
        if tracker is not None:
            killed = isinstance(exc, Terminated | KeyboardInterrupt)
            tracker.end("KILLED" if killed else "FAILED", error=str(exc) or type(exc).__name__)
        raise


def _train(opts: TrainOptions, tracker: Any, print_fn: Callable[..., None]) -> TrainingSummary:
    from kubellm.training.data import load_dataset, split_documents
    from kubellm.training.progress import ProgressCallback, StepClock
    from kubellm.training.tracking import MlflowMetricsCallback, gate_verdict
    from kubellm.training.trainer import (
        apply_lora,
        build_trainer,
        prepare_model,
        run_trainer,
        tokenize_blocks,
        training_arguments,
        world_size,
    )

    args = training_arguments(opts)
    dataset = load_dataset(opts.dataset, opts.text_field)
    train_docs, eval_docs = split_documents(dataset.documents, opts.eval_fraction, opts.seed)
    prepared = prepare_model(opts, train_docs, args)
    train_blocks, eval_blocks = tokenize_blocks(
        prepared.tokenizer, train_docs, eval_docs, opts.sequence_length
    )
    print_fn(
        f"dataset {dataset.name}: {len(dataset.documents)} documents, digest {dataset.digest}, "
        f"{len(train_blocks)} train / {len(eval_blocks)} eval blocks of {opts.sequence_length}"
    )
    if tracker is not None:
        tracker.log_dataset(dataset, len(train_blocks), len(eval_blocks))
    model = apply_lora(prepared.model, opts) if opts.method == "lora" else prepared.model
    n_params = sum(p.numel() for p in model.parameters())
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print_fn(f"model: {n_params:,} parameters, {n_trainable:,} trainable ({opts.method})")

    tokens_per_step = (
        opts.batch_size * opts.sequence_length * opts.gradient_accumulation * world_size()
    )
    clock = StepClock(tokens_per_step=tokens_per_step)
    callbacks: list[Any] = [ProgressCallback(clock, print_fn)]
    if tracker is not None:
        callbacks.append(MlflowMetricsCallback(tracker.run_id))
        tracker.log_metrics({"parameters": float(n_params), "trainable": float(n_trainable)}, 0)
    trainer = build_trainer(model, prepared.tokenizer, args, train_blocks, eval_blocks, callbacks)

    def on_initial_eval(loss: float) -> None:
        print_fn(f"initial eval loss {loss:.4f}")
        if tracker is not None:
            tracker.log_metrics({"eval_loss": loss}, step=0)

    outcome = run_trainer(trainer, opts, clock, on_initial_eval)
    summary = TrainingSummary(
        status=TrainingOutcome.SUCCEEDED,
        llm=opts.llm_name,
        method=opts.method,
        registered_model=opts.registered_model,
        run_id=tracker.run_id if tracker is not None else None,
        alias=opts.alias,
        base_model=prepared.base_ref,
        dataset_digest=dataset.digest,
        parameters=n_params,
        trainable_parameters=n_trainable,
        steps=outcome.global_step,
        steps_run=outcome.steps_run,
        resumed_from_step=outcome.resumed_from_step,
        train_loss=_round(outcome.train_loss),
        initial_eval_loss=_round(outcome.initial_eval_loss),
        eval_loss=_round(outcome.eval_loss),
        perplexity=_round(outcome.perplexity, 3),
        tokens_per_second=_round(outcome.tokens_per_second, 1),
        train_seconds=round(outcome.train_seconds, 3),
    )
    print_fn(
        f"trained {outcome.steps_run} steps (to {outcome.global_step}) in "
        f"{outcome.train_seconds:.1f}s, eval loss {summary.eval_loss}, "
        f"perplexity {summary.perplexity}, tokens/s {summary.tokens_per_second}"
    )
    if tracker is None:
        return summary  # other ranks: the main process logs and registers
    final: dict[str, float] = {"train_seconds": outcome.train_seconds}
    if outcome.eval_loss is not None and outcome.perplexity is not None:
        final |= {"eval_loss": outcome.eval_loss, "perplexity": outcome.perplexity}
    if outcome.tokens_per_second is not None:
        final["train_tokens_per_second"] = outcome.tokens_per_second
    tracker.log_metrics(final, step=outcome.global_step)
    tracker.flush()
    reason = gate_verdict(outcome.eval_loss, opts.max_eval_loss)
    if reason is not None:
        raise QualityGateFailed(reason)

    model_to_log = trainer.model
    adapter = opts.method == "lora" and opts.log_adapter
    if opts.method == "lora" and not opts.log_adapter:
        model_to_log = model_to_log.merge_and_unload()
    model_to_log.eval()
    version = tracker.log_and_register(
        model_to_log, prepared.tokenizer, adapter=adapter, base_ref=prepared.base_ref
    )
    print_fn(f"registered {opts.registered_model} version {version}, alias {opts.alias}")
    return summary.model_copy(update={"model_version": version})
