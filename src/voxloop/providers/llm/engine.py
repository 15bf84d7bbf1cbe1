"""One language model serving several conversations: slots, jobs and a step scheduler.

Each conversation has a slot: a sequence in the model's context whose cached tokens are that
conversation's prompt so far, so a turn only evaluates what is new since its own last turn,
whatever the other conversations did meanwhile. A prompt finds its slot by what it shares with
it: a conversation's next prompt extends its own cached one. The engine's thread runs steps; each step is one
batch evaluated at once:

1. every reply that is speaking adds its next token (decoding on a CPU is memory-bound: the
   weights are read once for all of them, so N replies cost little more than one);
2. replies still reading their prompt share `PROMPT_STEP` tokens, the one with the least left
   first: a turn's first token comes before anyone's continuation, and a long prompt (a long
   system prompt, a long history) is read in slices that other conversations' tokens ride along
   with and that their short prompts overtake, so it never stops them;
3. what is left of that budget goes to prefills (a listening conversation's words so far, at
   most `PREFILL_STEP` tokens each), which never delay a reply's prompt.

A job that is cancelled (the user barged in, the consumer went away) leaves at the next step.
Errors are handed to the job's consumer; the engine lives on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import numpy as np

from voxloop.providers.llm.jobs import DONE, Job, Slot, common
from voxloop.providers.llm.llama_backend import Backend, Entry
from voxloop.providers.llm.sampling import sample

__all__ = ["DONE", "PREFILL_STEP", "PROMPT_STEP", "Engine", "Job"]

log = logging.getLogger("voxloop.llm")
PROMPT_STEP = 16  # prompt tokens per step (where batch evaluation gets efficient here)
PREFILL_STEP = 4  # a listening conversation's tokens per step


class Engine:
    """Runs jobs on `backend` in its own thread. `fit_threads(limit)` is asked before each step
    how many threads to use (`threads` for replies, `prefill_threads` for prefills alone)."""

    def __init__(
        self,
        backend: Backend,
        context: int,
        threads: int = 2,
        prefill_threads: int = 1,
        fit_threads: Callable[[int, str], None] | None = None,
    ) -> None:
        self.backend = backend
        self.context = context
        self.threads = threads
        self.prefill_threads = min(prefill_threads, threads)
        self._fit = fit_threads or (lambda n, why: None)
        self.slots = [Slot(seq) for seq in range(backend.n_seq - 1)]
        self._template = Slot(backend.n_seq - 1)  # the system prompt, copied into new slots
        self._inbox: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._waiting: list[Job] = []
        self._closed = False
        self._thread: threading.Thread | None = None
        self.steps = 0

    # -- the consumer's side (any thread) --------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="voxloop-llm", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        if self._closed:
            raise RuntimeError("the language model has been closed")
        self._inbox.put(job)

    def close(self) -> None:
        self._closed = True
        self._inbox.put(None)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self.backend.close()

    def warm(self, tokens: list[int]) -> None:
        """Evaluate `tokens` (the system prompt) into the template (before `start`)."""
        for i in range(0, len(tokens), 64):
            part = tokens[i : i + 64]
            self.backend.decode([Entry(self._template.seq, i, part, False)])
        self._template.cached = list(tokens)

    # -- the engine's thread -------------------------------------------------------------------
    def _run(self) -> None:
        while not self._closed:
            self._take(block=not self._busy() and not self._waiting)
            self._assign()
            self._drop_cancelled()
            if self._busy():
                self._step()

    def _busy(self) -> bool:
        return any(s.job is not None for s in self.slots)

    def _take(self, block: bool) -> None:
        try:
            job = self._inbox.get(timeout=None) if block else self._inbox.get_nowait()
        except queue.Empty:
            return
        while True:
            if job is not None:
                self._waiting.append(job)
            try:
                job = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _assign(self) -> None:
        still: list[Job] = []
        for job in self._waiting:
            if job.cancelled.is_set():
                self._finish(job)
                continue
            slot = self._slot_for(job)
            if slot is None:
                if job.reply:
                    still.append(job)  # waits for a slot
                else:
                    self._finish(job)  # a prefill is only worth it now
                continue
            if slot.job is not None:  # a prefill gives way to a reply
                self._finish(slot.job)
            slot.job, job.slot = job, slot
            self._reuse(slot, job.tokens)
            if job.reply and log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "generate: prompt %d tokens, %d already cached (slot %d)",
                    len(job.tokens),
                    len(slot.cached),
                    slot.seq,
                )
        self._waiting = still

    def _slot_for(self, job: Job) -> Slot | None:
        """The idle slot where the job costs least: the tokens it must evaluate, plus the cached
        tokens of another conversation it would throw away (which that one would evaluate
        again). A conversation's next prompt goes back to its own slot; a new one takes a free
        slot (any slot gives it the system prompt), then the one used longest ago. A reply may
        also take a slot from a prefill (its own conversation's, as a rule)."""
        idle = [s for s in self.slots if s.job is None or (job.reply and not s.job.reply)]
        if not idle:
            return None
        base = common(self._template.cached, job.tokens)

        def cost(s: Slot) -> tuple[int, float]:
            kept = common(s.cached, job.tokens)
            return len(job.tokens) - max(kept, base) + len(s.cached) - kept, s.used

        return min(idle, key=cost)

    def _reuse(self, slot: Slot, tokens: list[int]) -> None:
        """Keep what the slot caches of `tokens`; start from the template when it holds more."""
        keep = common(slot.cached, tokens)
        from_template = common(self._template.cached, tokens)
        if from_template > keep:
            self.backend.forget(slot.seq, 0)
            self.backend.copy(self._template.seq, slot.seq, from_template)
            slot.scores = None
            slot.cached, keep = self._template.cached[:from_template], from_template
        if keep < len(slot.cached):
            self.backend.forget(slot.seq, keep)
            del slot.cached[keep:]
        if slot.scores is not None and slot.scores[0] > len(slot.cached):
            slot.scores = None  # what they followed is gone

    def _drop_cancelled(self) -> None:
        for s in self.slots:
            if s.job is not None and s.job.cancelled.is_set():
                self._finish(s.job)

    def _finish(self, job: Job, err: BaseException | None = None) -> None:
        slot = job.slot
        if slot is not None and slot.job is job:
            slot.job, slot.used = None, time.monotonic()
        job.slot = None
        job.post(err if err is not None else DONE)

    def _plan(self) -> list[tuple[Job, list[int], bool]]:
        plan: list[tuple[Job, list[int], bool]] = []
        jobs = sorted((s.job for s in self.slots if s.job is not None), key=lambda j: j.since)
        for job in jobs:  # 1. speaking replies: one token each
            if job.next_token is not None:
                plan.append((job, [job.next_token], True))
        budget = PROMPT_STEP

        def left(job: Job) -> int:
            return len(job.tokens) - len(job.slot.cached) if job.slot is not None else 0

        reading = [j for j in jobs if j.reply and j.next_token is None]
        for job in sorted(reading, key=left):  # 2. replies reading their prompt, the shortest first
            if budget > 0:
                assert job.slot is not None
                rest = job.tokens[len(job.slot.cached) :]
                saved = job.slot.scores
                if not rest and saved is not None and saved[0] == len(job.tokens):
                    self._next(job, saved[1])  # asked again: the scores its end had
                    if job.next_token is not None:
                        plan.append((job, [job.next_token], True))
                    continue
                if not rest:  # all cached: the last token again, for its logits
                    self.backend.forget(job.slot.seq, len(job.tokens) - 1)
                    del job.slot.cached[len(job.tokens) - 1 :]
                    rest = job.tokens[-1:]
                take = rest[:budget]
                budget -= len(take)
                plan.append((job, take, len(take) == len(rest)))
        for job in jobs:  # 3. prefills, with what is left
            if not job.reply:
                assert job.slot is not None
                take = job.tokens[len(job.slot.cached) :][: min(PREFILL_STEP, budget)]
                budget -= len(take)
                plan.append((job, take, False))
        return plan

    def _step(self) -> None:
        plan = self._plan()
        work = [(job, take, logits) for job, take, logits in plan if take]
        for job, take, _ in plan:
            if not take:  # a prefill with nothing new, or no budget left: done for now
                self._finish(job)
        if not work:
            return
        replying = any(job.reply for job, _, _ in work)
        if replying:
            self._fit(self.threads, "reply")
        else:
            self._fit(self.prefill_threads, "prefill")
        entries = [Entry(j.slot.seq, len(j.slot.cached), t, lg) for j, t, lg in work if j.slot]
        t0 = time.perf_counter()
        try:
            rows = self.backend.decode(entries)
        except Exception as e:  # noqa: BLE001 - handed to every job of the batch as data
            log.warning("llm: a step of %d tokens failed: %s", sum(len(t) for _, t, _ in work), e)
            for job, _, _ in work:
                if job.slot is not None:
                    self.backend.forget(job.slot.seq, 0)
                    job.slot.cached.clear()
                    job.slot.scores = None
                self._finish(job, e)
            return
        self.steps += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "llm step: %d tokens of %d conversation(s) in %.0f ms",
                sum(len(t) for _, t, _ in work),
                len(work),
                (time.perf_counter() - t0) * 1000,
            )
        for (job, take, _), row in zip(work, rows, strict=True):
            assert job.slot is not None
            reading = job.next_token is None
            job.slot.cached.extend(take)
            if not job.reply:
                self._finish(job)
            elif row is not None:
                if reading:
                    job.slot.scores = (len(job.slot.cached), row)
                self._next(job, row)

    def _next(self, job: Job, row: np.ndarray) -> None:
        assert job.slot is not None
        # the penalty is on the reply repeating itself (as OpenAI's penalties count only generated
        # tokens), not on the prompt: penalising the prompt's last tokens kept the model from
        # writing a tool call as the system prompt's examples just showed, and from saying back
        # the caller's own words
        cached = job.slot.cached
        tok = sample(row, cached[len(cached) - job.produced :] if job.produced else (), job.params, job.rng)
        usage = job.usage
        stop = tok in self.backend.stop_tokens
        if stop or job.produced >= job.max_tokens or len(job.slot.cached) + 1 >= self.context:
            if usage is not None:
                usage.finish_reason = "stop" if stop else "length"
            job.next_token = None
            self._finish(job)
            return
        job.produced += 1
        if usage is not None:
            usage.completion_tokens += 1
        job.next_token = tok
        job.pending += self.backend.piece(tok)
        try:
            piece = job.pending.decode()
        except UnicodeDecodeError:
            if len(job.pending) < 8:
                return  # the rest of a multi-byte character comes with the next token
            piece = job.pending.decode(errors="replace")
        job.pending = b""
        job.post(piece)
