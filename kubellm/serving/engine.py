"""The generation engine: continuous (iteration-level) batching over a transformers model.

One dedicated thread owns the model. Each iteration is one *step*: a single forward pass
over a flat list of tokens, one per decoding sequence plus chunks of the prompts of
sequences being prefilled, at most ``max_step_tokens`` in all. A long prompt is thus
prefilled over several steps while the others keep decoding (chunked prefill), and the
matrix products always see every token of the step at once. After the step each sequence
gets its token; finished, cancelled and failed ones leave at once, and waiting requests
take their slots. The event loop never touches the model: it submits requests into a
bounded queue and reads per-request event streams, delivered once per step.

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
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from kubellm.serving.detokenizing import DecodeState, decode_step
from kubellm.serving.errors import EngineFailure, ModelNotReady, Overloaded
from kubellm.serving.kvslots import Chunk, SlotCache, Step, install
from kubellm.serving.sampling import SamplingParams, check_stop, make_generator, next_tokens
from kubellm.serving.scheduling import (
    finish_reason,
    plan_admission,
    plan_chunks,
    plan_compaction,
)

__all__ = [
    "Engine",
    "EngineConfig",
    "ErrorEvent",
    "Event",
    "FinishEvent",
    "RequestStream",
    "TokenEvent",
]

log = logging.getLogger(__name__)

_CPU_CAPACITY = 8192  # cache positions per row reserved (not committed) on CPU


@dataclass(frozen=True)
class EngineConfig:
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


@dataclass(frozen=True)
class TokenEvent:
    """One generated token; ``text`` is the newly safe-to-show text (may be empty)."""

    text: str


@dataclass(frozen=True)
class FinishEvent:
    reason: str  # "stop" | "length" | "cancelled"
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class ErrorEvent:
    error: Exception


Event = TokenEvent | FinishEvent | ErrorEvent


class RequestStream:
    """The caller's handle on one submitted request: its events, and a way to cancel it.

    Events are produced on the engine thread and delivered either into an asyncio queue
    (thread-safely, through the loop) or, without a loop, into a plain queue.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop
        self._aqueue: asyncio.Queue[Event] | None = asyncio.Queue() if loop else None
        self._squeue: queue.Queue[Event] = queue.Queue()
        self.cancelled = False
        self._wake: Callable[[], None] = lambda: None

    def deliver(self, event: Event) -> None:
        if self._loop is None or self._aqueue is None:
            self._squeue.put(event)
            return
        with contextlib.suppress(RuntimeError):  # loop closed: nobody is listening
            self._loop.call_soon_threadsafe(self._aqueue.put_nowait, event)

    def cancel(self) -> None:
        """Drop the request: it leaves the batch (or the queue) before the next step."""
        self.cancelled = True
        self._wake()

    async def events(self) -> AsyncIterator[Event]:
        assert self._aqueue is not None, "events() needs a stream submitted with a loop"
        while True:
            event = await self._aqueue.get()
            yield event
            if not isinstance(event, TokenEvent):
                return

    def wait(self, timeout: float) -> tuple[str, FinishEvent]:
        """Block until the request ends (no-loop streams); return (text, finish)."""
        deadline = time.monotonic() + timeout
        parts: list[str] = []
        while True:
            event = self._squeue.get(timeout=max(0.0, deadline - time.monotonic()))
            if isinstance(event, TokenEvent):
                parts.append(event.text)
            elif isinstance(event, ErrorEvent):
                raise event.error
            else:
                return "".join(parts), event


def _put_all(items: list[tuple[asyncio.Queue[Event], Event]]) -> None:
    for q, event in items:
        q.put_nowait(event)


def deliver_all(items: list[tuple[RequestStream, Event]]) -> None:
    """Deliver a step's events with one wake-up per event loop, not one per token.

    Each ``call_soon_threadsafe`` wakes the loop and contends for the GIL with the engine
    thread; batching them per step keeps the loop's share of the GIL small.
    """
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Queue[Event], Event]]] = {}
    for stream, event in items:
        if stream._loop is None or stream._aqueue is None:
            stream._squeue.put(event)
        else:
            by_loop.setdefault(stream._loop, []).append((stream._aqueue, event))
    for loop, batch in by_loop.items():
        with contextlib.suppress(RuntimeError):  # loop closed: nobody is listening
            loop.call_soon_threadsafe(_put_all, batch)


@dataclass(eq=False)
class _Sequence:
    stream: RequestStream
    prompt_ids: list[int]
    params: SamplingParams
    max_new_tokens: int
    generator: torch.Generator
    need: int  # cache positions it may fill: prompt + token cap, within the context
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
        self.eos_ids = frozenset(eos_ids)
        self.pad_id = pad_id
        self.device = next(model.parameters()).device
        install(model)
        # On CPU untouched capacity costs no memory (see SlotCache): start at the context
        # so that the cache never has to grow; on accelerators grow as prompts require.
        on_cpu = self.device.type == "cpu"
        self._capacity = min(context_len, _CPU_CAPACITY) if on_cpu else 256
        self._cache = SlotCache(config.max_batch_size, self._capacity)
        # Any 4-D mask makes transformers skip building its own; slot_attention ignores it.
        self._no_mask = torch.ones((1, 1, 1, 1), dtype=torch.bool, device=self.device)
        self._waiting: deque[_Sequence] = deque()
        self._prefilling: list[_Sequence] = []  # first come, first prefilled
        self._running: list[_Sequence] = []  # decoding; _running[i] owns slot i
        self._cv = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._outbox: list[tuple[RequestStream, Event]] = []
        self.crashed: BaseException | None = None
        self.running = 0  # read by metrics; written by the engine thread only
        self.steps = 0

    # ----------------------------------------------------------------- public, any thread
    @property
    def waiting(self) -> int:
        return len(self._waiting)

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
        prompt = list(prompt_ids)
        seq = _Sequence(
            stream=stream,
            prompt_ids=prompt,
            params=params,
            max_new_tokens=max_new_tokens,
            generator=make_generator(params.seed),
            need=min(len(prompt) + max_new_tokens, self.context_len),
        )
        with self._cv:
            if len(self._waiting) >= self.config.max_queue:
                raise Overloaded(
                    f"the server's queue is full ({self.config.max_queue} waiting requests); "
                    "retry later",
                    retry_after=1,
                )
            self._waiting.append(seq)
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
        while True:
            with self._cv:
                while not (self._stopping or self._waiting or self._prefilling or self._running):
                    self._cv.wait()
                if self._stopping:
                    return
                admitted = self._take_admitted()
            for seq in admitted:
                if seq.need > self._cache.capacity:
                    used = [(s.slot, s.length) for s in self._running]
                    used += [(s.slot, s.prefilled) for s in self._prefilling if s is not seq]
                    self._cache.ensure_capacity(seq.need, used)
            self._drop_cancelled_prefills()
            if self._running or self._prefilling:
                started = time.perf_counter()
                self._step()
                log.debug(
                    "step %d: %d decoding, %d prefilling, %.3fs",
                    self.steps,
                    len(self._running),
                    len(self._prefilling),
                    time.perf_counter() - started,
                )
            self._flush()
            self.running = len(self._running) + len(self._prefilling)
            if not self.running:
                with self._cv:
                    if not self._waiting:
                        self._cache.reset(self._capacity)  # idle: give the memory back

    def _take_admitted(self) -> list[_Sequence]:
        for gone in [s for s in self._waiting if s.stream.cancelled]:
            self._waiting.remove(gone)
            self._finish(gone, "cancelled")
        in_batch = self._running + self._prefilling
        n = plan_admission(
            len(in_batch),
            [s.need for s in self._waiting],
            max_batch_size=self.config.max_batch_size,
            max_cache_tokens=self.config.max_cache_tokens,
            reserved_tokens=sum(s.need for s in in_batch),
        )
        taken = {s.slot for s in in_batch}
        free = [i for i in range(self.config.max_batch_size) if i not in taken]
        admitted = [self._waiting.popleft() for _ in range(n)]
        for seq in admitted:
            seq.slot = free.pop()  # from the top: the bottom slots are for decoding rows
            self._prefilling.append(seq)
        return admitted

    def _drop_cancelled_prefills(self) -> None:
        for seq in [s for s in self._prefilling if s.stream.cancelled]:
            self._prefilling.remove(seq)
            self._cache.release(seq.slot)
            self._finish(seq, "cancelled")

    def _step(self) -> None:
        """One forward pass: a token for every decoding row plus prompt chunks."""
        running = self._running
        if self._prefilling and self._prefilling[0].suspect:
            running, prefilling = [], self._prefilling[:1]  # isolate it: a failure is its own
            budget = self.config.max_step_tokens
            sizes = plan_chunks(0, [self._left(prefilling[0])], token_budget=budget, min_chunk=1)
        else:
            prefilling = [s for s in self._prefilling if not s.suspect]
            sizes = plan_chunks(
                len(running),
                [self._left(s) for s in prefilling],
                token_budget=self.config.max_step_tokens,
                min_chunk=self.config.min_prefill_chunk,
            )
        tokens = [s.generated[-1] for s in running]
        positions = [s.length for s in running]
        keep = list(range(len(running)))
        chunks: list[Chunk] = []
        completing: list[_Sequence] = []
        for seq, size in zip(prefilling, sizes, strict=False):
            chunks.append(Chunk(len(tokens), seq.slot, seq.prefilled, size))
            tokens += seq.prompt_ids[seq.prefilled : seq.prefilled + size]
            positions += range(seq.prefilled, seq.prefilled + size)
            if seq.prefilled + size == len(seq.prompt_ids):
                keep.append(len(tokens) - 1)
                completing.append(seq)
        chunked = prefilling[: len(chunks)]
        sampled = [*running, *completing]
        try:
            lens = [p + 1 for p in positions[: len(running)]]
            step = Step.build(self._cache, lens, chunks, self.device)
            logits = self._forward(tokens, positions, step, keep)
            new = next_tokens(logits, [s.params for s in sampled], [s.generator for s in sampled])
        except Exception as exc:
            self._step_failed(exc, running, chunked)
            return
        self.steps += 1
        for seq, chunk in zip(chunked, chunks, strict=True):
            seq.prefilled += chunk.length
        for seq, token in zip(sampled, new, strict=True):
            self._advance_safely(seq, token)
        self._leave([i for i, s in enumerate(self._running) if s.done])
        for seq in completing:
            self._prefilling.remove(seq)
            seq.suspect = False
            if seq.done:
                self._cache.release(seq.slot)
            else:
                self._join(seq)

    def _left(self, seq: _Sequence) -> int:
        return len(seq.prompt_ids) - seq.prefilled

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

    def _step_failed(
        self, exc: Exception, running: list[_Sequence], chunked: list[_Sequence]
    ) -> None:
        """Blame whoever a failed step can be pinned on; the others carry on.

        A step with prompt chunks marks their sequences suspect: each is then prefilled
        alone, and fails alone if it fails again. A step without chunks fails its rows.
        Nothing was committed, so the retried tokens overwrite what the step wrote.
        """
        if chunked and not (len(chunked) == 1 and chunked[0].suspect):
            log.warning("step failed (%s); prefilling its %d newcomers alone", exc, len(chunked))
            for seq in chunked:
                seq.suspect = True
            return
        culprits = chunked or running
        log.error("step failed; failing its %d sequences", len(culprits), exc_info=exc)
        for seq in culprits:
            self._fail(seq, exc)
            self._cache.release(seq.slot)
        if chunked:
            self._prefilling.remove(chunked[0])
        else:
            self._running = []

    def _leave(self, rows: list[int]) -> None:
        """Drop finished decoding rows; the rows above refill the holes (one copy each)."""
        if not rows:
            return
        running = self._running
        for src, dst in plan_compaction(len(running), rows):
            self._cache.move(src, dst, running[src].length)
            running[dst] = running[src]
            running[dst].slot = dst
        keep = len(running) - len(rows)
        for slot in range(keep, len(running)):
            self._cache.release(slot)
        del running[keep:]

    def _join(self, seq: _Sequence) -> None:
        """Move a freshly prefilled sequence to the slot after the decoding rows."""
        target = len(self._running)
        if seq.slot != target:
            other = next((s for s in self._prefilling if s.slot == target), None)
            if other is None:
                self._cache.move(seq.slot, target, seq.prefilled)
                self._cache.release(seq.slot)
            else:
                self._cache.swap(seq.slot, seq.prefilled, target, other.prefilled)
                other.slot = seq.slot
            seq.slot = target
        self._running.append(seq)

    def _advance_safely(self, seq: _Sequence, token: int) -> None:
        try:
            self._advance(seq, token)
        except Exception as exc:
            log.exception("post-processing failed for one request")
            self._fail(seq, exc)

    def _advance(self, seq: _Sequence, token: int) -> None:
        if seq.stream.cancelled:
            self._finish(seq, "cancelled")
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
        self._emit(seq.stream, TokenEvent(text[seq.emitted : safe]))
        seq.emitted = max(seq.emitted, safe)
        if reason is not None:
            self._finish(seq, reason)

    def _emit(self, stream: RequestStream, event: Event) -> None:
        self._outbox.append((stream, event))

    def _flush(self) -> None:
        if self._outbox:
            items, self._outbox = self._outbox, []
            deliver_all(items)

    def _decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def _finish(self, seq: _Sequence, reason: str) -> None:
        seq.done = True
        self._emit(seq.stream, FinishEvent(reason, len(seq.prompt_ids), len(seq.generated)))

    def _fail(self, seq: _Sequence, exc: BaseException) -> None:
        seq.done = True
        self._emit(seq.stream, ErrorEvent(EngineFailure(f"generation failed: {exc}")))

    def _abort_all(self, exc: Exception) -> None:
        with self._cv:
            pending = list(self._waiting) + self._prefilling + self._running
            self._waiting.clear()
        self._prefilling, self._running = [], []
        self._flush()
        for s in pending:
            if not s.done:
                s.done = True
                s.stream.deliver(ErrorEvent(exc))
