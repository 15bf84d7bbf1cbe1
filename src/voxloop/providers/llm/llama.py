"""llama.cpp (llama-cpp-python) with a GGUF from the package registry: one model for every
conversation of the process.

The prompt is ChatML (the format of both default models). The engine (`engine.py`) keeps each
conversation's prompt in its own sequence of one context, so a turn only evaluates what is new
since that conversation's last evaluation, and it evaluates the tokens of all conversations in
one batch per step. `prefill` uses that: evaluating the user's words while they are still
speaking means the reply starts with little left to read.

Threads follow the load (`voxloop.cpu`): at every step the model takes as many threads as other
processes leave cores free (at least 1, at most `config.threads`; for a step of prefills alone at
most `config.prefill_threads`, the recogniser needs the other core). llama.cpp threads that
share a core with another process wait for each other at every barrier, hundreds of times per
token: beside one busy process on 2 cores, 1 thread decoded at its idle speed (136 ms per token)
while 2 threads took 268 ms (3.4 s with OpenMP's default spinning; see `voxloop/__init__.py`);
with nothing else running, 2 threads took 80 ms. A prompt is evaluated in steps, so a reply that
is abandoned (the user went on speaking) frees the model within one step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence

from voxloop.config import LLMConfig
from voxloop.cpu import CpuMonitor
from voxloop.models import model_path
from voxloop.providers.base import LLM, Message, Sampling, Usage
from voxloop.providers.llm.engine import DONE, Engine, Job
from voxloop.providers.llm.llama_backend import Backend, LlamaCppBackend
from voxloop.providers.llm.sampling import SamplingParams

log = logging.getLogger("voxloop.llm")


def chatml(messages: Sequence[Message], open_reply: bool = True) -> str:
    """The ChatML prompt; with `open_reply` it ends where the assistant's reply begins."""
    text = "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages)
    return text + "<|im_start|>assistant\n" if open_reply else text


class LlamaLLM(LLM):
    name = "llama"

    def __init__(self, config: LLMConfig | None = None) -> None:
        self.config = config or LLMConfig()
        self._engine: Engine | None = None
        self._cpu = CpuMonitor()
        self._n_threads = self.config.threads
        self._squeezed = False  # the last thread count was cut by other processes' load
        self._loading: asyncio.Lock | None = None

    async def load(self) -> None:
        if self._engine is not None:
            return
        self._loading = self._loading or asyncio.Lock()
        async with self._loading:
            if self._engine is None:
                self._engine = await asyncio.to_thread(self._load)

    def _backend(self) -> Backend:
        cfg = self.config
        slots = max(1, cfg.slots)
        # one more sequence than conversations: the system prompt's, copied into new ones
        return LlamaCppBackend(model_path(cfg.model), cfg.context * slots, slots + 1, cfg.threads)

    def _load(self) -> Engine:
        t0 = time.perf_counter()
        backend = self._backend()
        engine = Engine(
            backend, self.config.context, self.config.threads, self.config.prefill_threads, self._fit
        )
        # Warm-up: the system prompt is evaluated once; every conversation starts from it.
        engine.warm(
            backend.tokenize(chatml([Message("system", self.config.system_prompt)], open_reply=False))
        )
        engine.start()
        log.info(
            "llm %s loaded and warmed up in %.1f s (%d conversations at once)",
            self.config.model,
            time.perf_counter() - t0,
            len(engine.slots),
        )
        return engine

    # -- async API -----------------------------------------------------------------------------
    def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        if self._engine is None:
            raise RuntimeError("LlamaLLM.load() must run before stream()")
        return self._pieces(self._engine, messages)

    def stream_with(
        self, messages: Sequence[Message], sampling: Sampling, usage: Usage | None = None
    ) -> AsyncGenerator[str, None]:
        if self._engine is None:
            raise RuntimeError("LlamaLLM.load() must run before stream_with()")
        return self._pieces(self._engine, messages, sampling, usage)

    def _params(self, sampling: Sampling | None) -> SamplingParams:
        temp, top_p = self.config.temperature, 0.9
        if sampling is not None:
            temp = temp if sampling.temperature is None else sampling.temperature
            top_p = top_p if sampling.top_p is None else sampling.top_p
        return SamplingParams(temperature=temp, top_p=top_p)

    async def _pieces(
        self,
        engine: Engine,
        messages: Sequence[Message],
        sampling: Sampling | None = None,
        usage: Usage | None = None,
    ) -> AsyncGenerator[str, None]:
        max_tokens = self.config.max_tokens
        if sampling is not None and sampling.max_tokens is not None:
            max_tokens = sampling.max_tokens
        tokens = engine.backend.tokenize(chatml(messages))
        if usage is not None:
            usage.prompt_tokens = len(tokens)
        q: asyncio.Queue[object] = asyncio.Queue()
        job = Job(tokens, _poster(q), params=self._params(sampling), max_tokens=max_tokens, usage=usage)
        engine.submit(job)
        try:
            while True:
                item = await q.get()
                if item is DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, str)
                yield item
        finally:
            job.cancel()  # a consumer that stops early frees the model at the next step

    async def prefill(self, messages: Sequence[Message]) -> None:
        """Evaluate these messages ahead of time. The last (the user's words so far) may still
        change at its end, so its last word and the reply's opening are left for later; one
        step of at most `engine.PREFILL_STEP` tokens per call."""
        engine = self._engine
        if engine is None or not messages:
            return
        *done, last = messages
        stable = last.content.rsplit(" ", 1)[0] if " " in last.content.strip() else ""
        if not stable:
            return
        prompt = chatml([*done, Message(last.role, stable)], open_reply=False).removesuffix("<|im_end|>\n")
        q: asyncio.Queue[object] = asyncio.Queue()
        job = Job(engine.backend.tokenize(prompt), _poster(q), reply=False)
        engine.submit(job)
        try:
            item = await q.get()
        finally:
            job.cancel()
        if isinstance(item, BaseException):
            raise item

    def _fit(self, limit: int, why: str) -> None:
        """Use as many threads as the cores other processes leave free, at most `limit`; say so
        when the load starts or stops taking threads away (a limit of 1 tells nothing)."""
        n = self._cpu.threads_for(limit)
        squeezed = n < limit
        if limit > 1 and squeezed != self._squeezed:
            self._squeezed = squeezed
            if squeezed:
                log.info(
                    "llm: other processes keep %.1f of %d cores busy: %s on %d thread(s), not %d",
                    self._cpu.last_others or 0.0,
                    self._cpu.n_cores,
                    why,
                    n,
                    limit,
                )
            else:
                log.info("llm: the cores are free again: %s on %d thread(s)", why, n)
        if n != self._n_threads and self._engine is not None:
            log.debug("llm: %s on %d thread(s)", why, n)
            self._engine.backend.set_threads(n)
            self._n_threads = n

    async def aclose(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await asyncio.to_thread(engine.close)


def _poster(q: asyncio.Queue[object]) -> Callable[[object], None]:
    """A thread-safe way for the engine to hand items to a consumer on this event loop."""
    loop = asyncio.get_running_loop()

    def post(item: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody listens any more
            loop.call_soon_threadsafe(q.put_nowait, item)

    return post
