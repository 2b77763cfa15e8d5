"""The generation engine: continuous (iteration-level) batching over a transformers model.

One dedicated thread owns the model. Each iteration is one *step*: the ``Scheduler``
(torch-free: queues, admission, chunked prefill, finishing) plans a single forward pass
over a flat list of tokens, one per decoding sequence plus chunks of the prompts being
prefilled, at most ``max_step_tokens`` in all; the engine applies the plan's cache
operations, runs the model, samples a token per finished row and hands the tokens back to
the scheduler, which turns them into events and decides who leaves. A long prompt is thus
prefilled over several steps while the others keep decoding (chunked prefill), and the
matrix products always see every token of the step at once. The event loop never touches
the model: it submits requests into a bounded queue and reads per-request event streams,
delivered once per step.

The KV cache is ``kvslots.SlotCache``: a preallocated row per sequence, written in place,
read in place by our attention function (see that module). Joining costs nothing; leaving
costs one row copy (the top decoding row fills the hole, ``plan_compaction``); attention
reads positions below the longest row, each row masking its own tail. The model's own
modules do everything else, so any transformers causal LM that supports the attention
interface runs unchanged, and greedy output equals ``generate`` in fp32 (tested).

Why our own scheduler rather than transformers' continuous batching: that one is built
for accelerators (paged KV blocks gathered per step, a scheduler that re-plans memory
blocks every step); on two CPU cores the bookkeeping costs more than it saves.

Isolation: a failing sequence (detokenisation, sampling) fails alone; when a step that
prefills newcomers fails, each newcomer is retried in a step of its own, so only the
culprit fails; a failing decode-only step fails its rows. Other exceptions in the loop
itself are bugs: the thread records them in ``crashed``, fails every request, and
``alive`` turns false.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from kubellm.serving.errors import EngineFailure, ModelNotReady
from kubellm.serving.kvslots import SlotCache, Step, install
from kubellm.serving.packing import pack_linears
from kubellm.serving.sampling import make_generator, next_tokens
from kubellm.serving.scheduler import Scheduler, SchedulerConfig, StepOutput, StepPlan
from kubellm.serving.scheduling import CacheOp, Grow, Move, Release, Swap
from kubellm.serving.streams import RequestStream, SamplingParams, deliver_all

__all__ = ["Engine", "EngineConfig"]

log = logging.getLogger(__name__)

_CPU_CAPACITY = 8192  # cache positions per row reserved (not committed) on CPU


@dataclass(frozen=True)
class EngineConfig(SchedulerConfig):
    """The scheduler's limits, and how the engine prepares the model."""

    # fp32 on CPU: pack the linear layers' weights once for MKL (``packing``).
    pack_weights: bool = True


class Engine:
    """Owns the model on one thread; ``submit`` from any thread, events come back."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        config: EngineConfig,
        *,
        context_len: int,
        eos_ids: Collection[int],
        pad_id: int = 0,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.context_len = context_len
        self.pad_id = pad_id
        self.device = next(model.parameters()).device
        install(model)
        if config.pack_weights:
            pack_linears(model)
        self.scheduler = Scheduler(
            config, context_len=context_len, eos_ids=eos_ids, decode=self._decode
        )
        # On CPU untouched capacity costs no memory (see SlotCache): start at the context
        # so that the cache never has to grow; on accelerators grow as prompts require.
        on_cpu = self.device.type == "cpu"
        self._capacity = min(context_len, _CPU_CAPACITY) if on_cpu else 256
        self._cache = SlotCache(config.max_batch_size, self._capacity)
        # Any 4-D mask makes transformers skip building its own; slot_attention ignores it.
        self._no_mask = torch.ones((1, 1, 1, 1), dtype=torch.bool, device=self.device)
        self._cv = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.crashed: BaseException | None = None
        self.running = 0  # read by metrics; written by the engine thread only
        self.steps = 0

    # ----------------------------------------------------------------- public, any thread
    @property
    def eos_ids(self) -> frozenset[int]:
        return self.scheduler.eos_ids

    @property
    def waiting(self) -> int:
        return len(self.scheduler.waiting)

    @property
    def alive(self) -> bool:
        """The engine thread runs (false before start, after stop, and if it died)."""
        return self._thread is not None and self._thread.is_alive() and self.crashed is None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name="kubellm-engine", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(
        self,
        prompt_ids: Sequence[int],
        params: SamplingParams,
        max_new_tokens: int,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> RequestStream:
        """Queue a request; raise ``Overloaded`` when the queue is full."""
        if not self.alive or self._stopping:
            raise ModelNotReady("the engine is not running")
        if not prompt_ids:
            raise ValueError("a request needs at least one prompt token")
        stream = RequestStream(loop)
        stream._wake = self._notify
        generator = make_generator(params.seed)
        with self._cv:
            self.scheduler.submit(stream, prompt_ids, params, max_new_tokens, generator)
            self._cv.notify()
        return stream

    def generate(self, prompt_ids: Sequence[int], max_new_tokens: int, timeout: float) -> str:
        """Blocking generation through the same path (used for the warm-up)."""
        stream = self.submit(prompt_ids, SamplingParams(temperature=0.0), max_new_tokens)
        text, _ = stream.wait(timeout)
        return text

    # --------------------------------------------------------------- engine thread only
    def _notify(self) -> None:
        with self._cv:
            self._cv.notify()

    def _main(self) -> None:
        try:
            with torch.inference_mode():
                self._loop()
        except BaseException as exc:  # a bug in the loop itself: report it, fail everyone
            log.exception("the engine thread died")
            self.crashed = exc
            self._abort_all(EngineFailure(f"the engine stopped: {exc}"))
            return
        self._abort_all(ModelNotReady("the server is shutting down"))

    def _loop(self) -> None:
        scheduler = self.scheduler
        while True:
            with self._cv:
                while not (self._stopping or scheduler.has_work):
                    self._cv.wait()
                if self._stopping:
                    return
                plan = scheduler.schedule(self._cache.capacity)
            self._apply(plan.cache_ops)
            if plan.tokens:
                started = time.perf_counter()
                self._apply(scheduler.update(plan, self._execute(plan)))
                log.debug(
                    "step %d: %d decoding, %d prefilling, %.3fs",
                    self.steps,
                    len(plan.decoding),
                    len(plan.chunks),
                    time.perf_counter() - started,
                )
            self._flush()
            self.running = scheduler.in_batch
            if not self.running:
                with self._cv:
                    if not scheduler.waiting:
                        self._cache.reset(self._capacity)  # idle: give the memory back

    def _execute(self, plan: StepPlan) -> StepOutput:
        """One forward pass and the sampled tokens; an exception is the step's output."""
        sampled = plan.sampled
        try:
            step = Step.build(self._cache, plan.decode_lens, plan.chunks, self.device)
            logits = self._forward(plan.tokens, plan.positions, step, plan.keep)
            tokens = next_tokens(
                logits, [s.params for s in sampled], [s.generator for s in sampled]
            )
        except Exception as exc:
            return StepOutput(error=exc)
        self.steps += 1
        return StepOutput(tokens=tokens)

    def _forward(
        self, tokens: list[int], positions: list[int], step: Step, keep: list[int]
    ) -> torch.Tensor:
        out = self.model(
            input_ids=torch.tensor([tokens], dtype=torch.long, device=self.device),
            position_ids=torch.tensor([positions], dtype=torch.long, device=self.device),
            attention_mask=self._no_mask,
            use_cache=False,
            logits_to_keep=torch.tensor(keep, dtype=torch.long, device=self.device),
            kubellm_step=step,
        )
        return out.logits[0]

    def _apply(self, ops: list[CacheOp]) -> None:
        cache = self._cache
        for op in ops:
            match op:
                case Move(src, dst, length):
                    cache.move(src, dst, length)
                case Release(slot):
                    cache.release(slot)
                case Swap(a, len_a, b, len_b):
                    cache.swap(a, len_a, b, len_b)
                case Grow(length, used):
                    cache.ensure_capacity(length, used)

    def _flush(self) -> None:
        events = self.scheduler.take_events()
        if events:
            deliver_all(events)

    def _decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def _abort_all(self, exc: Exception) -> None:
        with self._cv:
            self.scheduler.abort_all(exc)
        self._flush()
