"""Who runs in the next step, and what each step's tokens mean: the engine's bookkeeping.

The split follows vLLM's: the ``Scheduler`` owns the requests (a waiting queue, the
sequences being prefilled, the decoding rows) and every decision about them, and knows
nothing of tensors; the engine owns the model and the KV cache and only executes. Each
iteration the engine asks ``schedule()`` for a ``StepPlan`` (the cache operations to do
first, then the flat tokens and positions of one forward pass, the prompt chunks, the rows
whose logits are sampled), runs it, and hands the sampled tokens (or the step's exception)
back to ``update()``, which turns them into text events, decides which sequences finish,
and returns the cache operations their leaving implies.

Decisions that depend only on numbers are pure functions in ``scheduling``; this module
is the state they act on. A sequence ends in exactly one place, ``_end``: whatever ends
it (a stop, the token cap, a cancellation seen in any queue, a failure, a shutdown) emits
its one last event there, and ``_retire`` then removes every ended sequence from the
batch and frees its slot. Cancellation is swept from all three queues before each step.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubellm.serving.detokenizing import Decode, DecodeState, check_stop, decode_step
from kubellm.serving.errors import EngineFailure, Overloaded
from kubellm.serving.scheduling import (
    CacheOp,
    Chunk,
    Grow,
    Move,
    Release,
    Swap,
    finish_reason,
    plan_admission,
    plan_chunks,
    plan_compaction,
)
from kubellm.serving.streams import (
    ErrorEvent,
    Event,
    FinishEvent,
    RequestStream,
    SamplingParams,
    TokenEvent,
)

__all__ = ["Request", "Scheduler", "SchedulerConfig", "StepOutput", "StepPlan"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchedulerConfig:
    max_batch_size: int = 32
    max_queue: int = 256
    # Tokens one step computes: a token per decoding row plus prompt chunks. Bounds the
    # pause a long prompt imposes on the decoding rows (chunked prefill).
    max_step_tokens: int = 256
    # Prompt tokens a step prefills however many rows decode, so newcomers always progress.
    min_prefill_chunk: int = 32
    # Cache positions (prompt + token cap of every admitted sequence) the batch may
    # reserve; None: bounded only by max_batch_size x context.
    max_cache_tokens: int | None = None


@dataclass(eq=False)
class Request:
    """One request from submission to its end, as the scheduler tracks it."""

    stream: RequestStream
    prompt_ids: list[int]
    params: SamplingParams
    max_new_tokens: int
    need: int  # cache positions it may fill: prompt + token cap, within the context
    generator: Any = None  # the engine's random stream for it; never read here
    generated: list[int] = field(default_factory=list)
    text: str = ""  # decoded so far (may run ahead of what was delivered)
    emitted: int = 0  # characters of ``text`` already delivered
    decode_state: DecodeState = field(default_factory=DecodeState)
    done: bool = False
    slot: int = -1
    prefilled: int = 0  # prompt tokens whose keys and values are in the cache
    suspect: bool = False  # in a step that failed: prefilled alone from now on

    @property
    def length(self) -> int:
        """Positions of this sequence in the cache before its next token."""
        return self.prefilled + max(0, len(self.generated) - 1)

    @property
    def prompt_left(self) -> int:
        return len(self.prompt_ids) - self.prefilled


@dataclass
class StepPlan:
    """One step for the engine: cache operations first, then one forward pass.

    The flat ``tokens`` are one per decoding row (``decoding[i]`` in slot ``i``), then the
    prompt ``chunks``; ``keep`` are the flat indices whose logits are sampled, for the
    sequences in ``sampled`` (decoding rows, then prompts this step completes).
    """

    cache_ops: list[CacheOp] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    decoding: list[Request] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    chunked: list[Request] = field(default_factory=list)
    keep: list[int] = field(default_factory=list)
    sampled: list[Request] = field(default_factory=list)

    @property
    def decode_lens(self) -> list[int]:
        """Cache positions of each decoding row once this step's token is written."""
        return [p + 1 for p in self.positions[: len(self.decoding)]]


@dataclass(frozen=True)
class StepOutput:
    """What the engine's forward pass produced: a token per sampled row, or the error."""

    tokens: Sequence[int] = ()
    error: Exception | None = None


class Scheduler:
    """Queues, admission, chunked prefill, finishing; every method runs on one thread
    except ``submit`` and the ``waiting`` reads, which the engine guards with its lock."""

    def __init__(
        self,
        config: SchedulerConfig,
        *,
        context_len: int,
        eos_ids: Collection[int],
        decode: Decode,
    ) -> None:
        self.config = config
        self.context_len = context_len
        self.eos_ids = frozenset(eos_ids)
        self._decode = decode
        self.waiting: deque[Request] = deque()
        self.prefilling: list[Request] = []  # first come, first prefilled
        self.running: list[Request] = []  # decoding; running[i] owns slot i
        self.outbox: list[tuple[RequestStream, Event]] = []
        self._ops: list[CacheOp] = []

    # ------------------------------------------------------------------------ queues
    @property
    def has_work(self) -> bool:
        return bool(self.waiting or self.prefilling or self.running)

    @property
    def in_batch(self) -> int:
        return len(self.running) + len(self.prefilling)

    def submit(
        self,
        stream: RequestStream,
        prompt_ids: Sequence[int],
        params: SamplingParams,
        max_new_tokens: int,
        generator: Any = None,
    ) -> Request:
        """Queue a request; raise ``Overloaded`` when the queue is full."""
        if len(self.waiting) >= self.config.max_queue:
            raise Overloaded(
                f"the server's queue is full ({self.config.max_queue} waiting requests); "
                "retry later",
                retry_after=1,
            )
        prompt = list(prompt_ids)
        request = Request(
            stream=stream,
            prompt_ids=prompt,
            params=params,
            max_new_tokens=max_new_tokens,
            need=min(len(prompt) + max_new_tokens, self.context_len),
            generator=generator,
        )
        self.waiting.append(request)
        return request

    def take_events(self) -> list[tuple[RequestStream, Event]]:
        events, self.outbox = self.outbox, []
        return events

    # ---------------------------------------------------------------------- schedule
    def schedule(self, capacity: int) -> StepPlan:
        """Sweep cancellations, admit waiting requests, and plan the next step.

        ``capacity`` is the cache's current positions per row. A plan without tokens
        (nothing left to run) still carries the cache operations the sweep implies.
        """
        for seq in [*self.waiting, *self.prefilling, *self.running]:
            if seq.stream.cancelled:
                self._end(seq, FinishEvent("cancelled", len(seq.prompt_ids), len(seq.generated)))
        if any(s.done for s in self.waiting):
            self.waiting = deque(s for s in self.waiting if not s.done)
        self._retire()
        admitted = self._admit()
        longest = max((s.need for s in admitted), default=0)
        if longest > capacity:
            used = [(s.slot, s.length) for s in self.running]
            used += [(s.slot, s.prefilled) for s in self.prefilling]
            self._ops.append(Grow(longest, tuple(used)))
        plan = self._plan_step() if self.running or self.prefilling else StepPlan()
        plan.cache_ops, self._ops = self._ops, []
        return plan

    def _admit(self) -> list[Request]:
        in_batch = self.running + self.prefilling
        n = plan_admission(
            len(in_batch),
            [s.need for s in self.waiting],
            max_batch_size=self.config.max_batch_size,
            max_cache_tokens=self.config.max_cache_tokens,
            reserved_tokens=sum(s.need for s in in_batch),
        )
        taken = {s.slot for s in in_batch}
        free = [i for i in range(self.config.max_batch_size) if i not in taken]
        admitted = [self.waiting.popleft() for _ in range(n)]
        for seq in admitted:
            seq.slot = free.pop()  # from the top: the bottom slots are for decoding rows
            self.prefilling.append(seq)
        return admitted

    def _plan_step(self) -> StepPlan:
        """A token for every decoding row plus prompt chunks, within the token budget."""
        running = self.running
        if self.prefilling and self.prefilling[0].suspect:
            running, prefilling = [], self.prefilling[:1]  # isolate it: a failure is its own
            budget = self.config.max_step_tokens
            sizes = plan_chunks(0, [prefilling[0].prompt_left], token_budget=budget, min_chunk=1)
        else:
            prefilling = [s for s in self.prefilling if not s.suspect]
            sizes = plan_chunks(
                len(running),
                [s.prompt_left for s in prefilling],
                token_budget=self.config.max_step_tokens,
                min_chunk=self.config.min_prefill_chunk,
            )
        plan = StepPlan(
            tokens=[s.generated[-1] for s in running],
            positions=[s.length for s in running],
            decoding=list(running),
            keep=list(range(len(running))),
            sampled=list(running),
        )
        for seq, size in zip(prefilling, sizes, strict=False):
            plan.chunks.append(Chunk(len(plan.tokens), seq.slot, seq.prefilled, size))
            plan.chunked.append(seq)
            plan.tokens += seq.prompt_ids[seq.prefilled : seq.prefilled + size]
            plan.positions += range(seq.prefilled, seq.prefilled + size)
            if seq.prefilled + size == len(seq.prompt_ids):
                plan.keep.append(len(plan.tokens) - 1)
                plan.sampled.append(seq)
        return plan

    # ------------------------------------------------------------------------ update
    def update(self, plan: StepPlan, output: StepOutput) -> list[CacheOp]:
        """Apply a step's result; return the cache operations to do before the next one."""
        if output.error is not None:
            self._step_failed(output.error, plan)
        else:
            for seq, chunk in zip(plan.chunked, plan.chunks, strict=True):
                seq.prefilled += chunk.length
            for seq, token in zip(plan.sampled, output.tokens, strict=True):
                try:
                    self._advance(seq, token)
                except Exception as exc:  # detokenising, stop strings: this one fails alone
                    self._fail(seq, exc)
        self._retire()
        ops, self._ops = self._ops, []
        return ops

    def _advance(self, seq: Request, token: int) -> None:
        if seq.stream.cancelled:
            self._end(seq, FinishEvent("cancelled", len(seq.prompt_ids), len(seq.generated)))
            return
        seq.generated.append(token)
        eos_ids = frozenset() if seq.params.ignore_eos else self.eos_ids
        is_eos = token in eos_ids
        ids = seq.generated[:-1] if is_eos else seq.generated
        context_full = len(seq.prompt_ids) + len(seq.generated) >= self.context_len
        last = is_eos or len(seq.generated) >= seq.max_new_tokens or context_full
        delta, seq.decode_state = decode_step(self._decode, ids, seq.decode_state, final=last)
        seq.text += delta
        text = seq.text
        stop = check_stop(text, seq.params.stop)
        reason = finish_reason(
            token,
            generated=len(seq.generated),
            max_new_tokens=seq.max_new_tokens,
            eos_ids=eos_ids,
            stopped_by_string=stop.stopped,
            context_full=context_full,
        )
        # At the end, everything up to the stop string (or all of it) becomes safe to show.
        safe = stop.safe_len if (reason is None or stop.stopped) else len(text)
        self.outbox.append((seq.stream, TokenEvent(text[seq.emitted : safe])))
        seq.emitted = max(seq.emitted, safe)
        if reason is not None:
            self._end(seq, FinishEvent(reason, len(seq.prompt_ids), len(seq.generated)))

    def _step_failed(self, exc: Exception, plan: StepPlan) -> None:
        """Blame whoever a failed step can be pinned on; the others carry on.

        A step with prompt chunks marks their sequences suspect: each is then prefilled
        alone, and fails alone if it fails again. A step without chunks fails its rows.
        Nothing was committed, so the retried tokens overwrite what the step wrote.
        """
        chunked = plan.chunked
        if chunked and not (len(chunked) == 1 and chunked[0].suspect):
            log.warning("step failed (%s); prefilling its %d newcomers alone", exc, len(chunked))
            for seq in chunked:
                seq.suspect = True
            return
        culprits = chunked or plan.decoding
        log.error("step failed; failing its %d sequences", len(culprits), exc_info=exc)
        for seq in culprits:
            self._fail(seq, exc)

    # ------------------------------------------------------------------ finishing
    def _fail(self, seq: Request, exc: BaseException) -> None:
        self._end(seq, ErrorEvent(EngineFailure(f"generation failed: {exc}")))

    def _end(self, seq: Request, last: FinishEvent | ErrorEvent) -> None:
        """The one place a sequence ends: its last event, once."""
        if seq.done:
            return
        seq.done = True
        self.outbox.append((seq.stream, last))

    def _retire(self) -> None:
        """Ended sequences leave the batch; fully prefilled ones join the decoding rows."""
        leaving = [i for i, s in enumerate(self.running) if s.done]
        if leaving:
            running = self.running
            for src, dst in plan_compaction(len(running), leaving):
                self._ops.append(Move(src, dst, running[src].length))
                running[dst] = running[src]
                running[dst].slot = dst
            keep = len(running) - len(leaving)
            self._ops.extend(Release(slot) for slot in range(keep, len(running)))
            del running[keep:]
        for seq in list(self.prefilling):
            if seq.done:
                self.prefilling.remove(seq)
                self._ops.append(Release(seq.slot))
            elif seq.prompt_left == 0:
                self.prefilling.remove(seq)
                seq.suspect = False
                self._join(seq)

    def _join(self, seq: Request) -> None:
        """Move a freshly prefilled sequence to the slot after the decoding rows."""
        target = len(self.running)
        if seq.slot != target:
            other = next((s for s in self.prefilling if s.slot == target), None)
            if other is None:
                self._ops.append(Move(seq.slot, target, seq.prefilled))
                self._ops.append(Release(seq.slot))
            else:
                self._ops.append(Swap(seq.slot, seq.prefilled, target, other.prefilled))
                other.slot = seq.slot
            seq.slot = target
        self.running.append(seq)

    def abort_all(self, exc: Exception) -> None:
        """End every request with ``exc`` (shutdown, or the engine died)."""
        pending = [*self.waiting, *self.prefilling, *self.running]
        self.waiting.clear()
        self.prefilling, self.running, self._ops = [], [], []
        for seq in pending:
            self._end(seq, ErrorEvent(exc))
