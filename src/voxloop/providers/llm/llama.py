"""llama.cpp (llama-cpp-python) with a GGUF from the package registry.

The prompt is ChatML (the format of both default models). llama.cpp keeps the longest common token
prefix of consecutive prompts in its KV cache, so a turn only evaluates what is new since the last
evaluation. `prefill` uses that: evaluating the user's words while they are still speaking means
the reply starts with little left to read.

Threads follow the load (`voxloop.cpu`): each reply, each prefill step and every few tokens the
model takes as many threads as other processes leave cores free (at least 1, at most
`config.threads`; while the user speaks at most `config.prefill_threads`, the recogniser needs
the other core). llama.cpp threads that share a core with another process wait for each other at
every barrier, hundreds of times per token: beside one busy process on 2 cores, 1 thread decoded
at its idle speed (136 ms per token) while 2 threads took 268 ms (3.4 s with OpenMP's default
spinning; see `voxloop/__init__.py`); with nothing else running, 2 threads took 80 ms. The prompt of a reply is evaluated in steps, so a reply that is abandoned (the user went
on speaking) frees the model within one step instead of after its whole prompt.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Iterator, Sequence
from typing import Any

from voxloop.config import LLMConfig
from voxloop.cpu import CpuMonitor
from voxloop.models import model_path
from voxloop.providers._imports import require
from voxloop.providers._worker import Worker
from voxloop.providers.base import LLM, Message, Sampling, Usage

log = logging.getLogger("voxloop.llm")
PREFILL_STEP = 4  # tokens per prefill call (~0.3 s on one thread here): a reply never waits long behind one
PROMPT_STEP = 16  # a reply's prompt is evaluated this many tokens at a time (it can stop between);
# 16 is also where llama.cpp's batch evaluation gets efficient: 40 ms per token on one thread, 73 at 4-8
RECHECK_TOKENS = 8  # the thread count is looked at again after this many generated tokens
_WORKING = ""  # yielded between prompt steps (an abandoned reply stops there); never passed on


def chatml(messages: Sequence[Message], open_reply: bool = True) -> str:
    """The ChatML prompt; with `open_reply` it ends where the assistant's reply begins."""
    text = "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages)
    return text + "<|im_start|>assistant\n" if open_reply else text


class LlamaLLM(LLM):
    name = "llama"

    def __init__(self, config: LLMConfig | None = None) -> None:
        self.config = config or LLMConfig()
        self._llm: Any = None
        self._stop: set[int] = set()
        self._worker = Worker("llm")
        self._cpu = CpuMonitor()
        self._n_threads = self.config.threads
        self._squeezed = False  # the last thread count was cut by other processes' load

    async def load(self) -> None:
        if self._llm is None:
            await self._worker.run(self._load)

    def _load(self) -> None:
        llama_cpp = require("llama_cpp", "llama")
        path = model_path(self.config.model)
        t0 = time.perf_counter()
        self._llm = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=self.config.context,
            n_threads=self.config.threads,
            n_threads_batch=self.config.threads,
            verbose=False,
        )
        self._stop = {self._llm.token_eos(), *self._llm.tokenize(b"<|im_end|>", add_bos=False, special=True)}
        # Warm-up: puts the system prompt in the KV cache, so the first turn starts from it.
        self._prefill(chatml([Message("system", self.config.system_prompt)], open_reply=False))
        log.info("llm %s loaded and warmed up in %.1f s", self.config.model, time.perf_counter() - t0)

    # -- worker thread -----------------------------------------------------------------------------
    def _tokens(self, prompt: str) -> list[int]:
        return list(self._llm.tokenize(prompt.encode(), add_bos=False, special=True))

    def _prefill(self, prompt: str, limit: int = 0) -> int:
        """Evaluate the part of `prompt` that is not in the KV cache yet (at most `limit` tokens
        when > 0, so the worker is never tied up for long); returns the tokens evaluated."""
        return self._eval_step(self._tokens(prompt), limit)

    def _cached(self, tokens: Sequence[int]) -> int:
        """How many of `tokens`, from the start, the KV cache holds."""
        keep = 0
        for a, b in zip(self._llm._input_ids[: self._llm.n_tokens], tokens, strict=False):
            if a != b:
                break
            keep += 1
        return keep

    def _eval_step(self, tokens: Sequence[int], limit: int = 0) -> int:
        """Drop what the KV cache holds beyond the common prefix with `tokens`, then evaluate the
        next (at most `limit`, when > 0) of them; returns how many were evaluated."""
        llm = self._llm
        keep = self._cached(tokens)
        if keep < llm.n_tokens:
            llm._ctx.kv_cache_seq_rm(-1, keep, -1)
            llm.n_tokens = keep
        rest = list(tokens[keep:])
        if limit > 0:
            rest = rest[:limit]
        if rest:
            t0 = time.perf_counter()
            llm.eval(rest)
            log.debug(
                "prefill: %d cached, %d evaluated in %.0f ms on %d thread(s)",
                keep,
                len(rest),
                (time.perf_counter() - t0) * 1000,
                self._n_threads,
            )
        return len(rest)

    def _generate(
        self,
        messages: Sequence[Message],
        max_tokens: int,
        sampling: Sampling | None = None,
        usage: Usage | None = None,
    ) -> Iterator[str]:
        llm, cfg = self._llm, self.config
        tokens = self._tokens(chatml(messages))
        temp, top_p = cfg.temperature, 0.9
        if sampling is not None:
            temp = cfg.temperature if sampling.temperature is None else sampling.temperature
            top_p = top_p if sampling.top_p is None else sampling.top_p
        if usage is not None:
            usage.prompt_tokens = len(tokens)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("generate: prompt %d tokens, %d already cached", len(tokens), self._cached(tokens))
        self._fit(cfg.threads, "reply")
        # A long prompt in steps; the last step (at most PROMPT_STEP tokens, the one whose logits
        # give the first token) is llama.cpp's own, in one batch: split, it would cost a whole
        # extra pass (a 1-token evaluation costs half of a 16-token one here).
        while len(tokens) - self._cached(tokens) > PROMPT_STEP:
            self._eval_step(tokens, PROMPT_STEP)
            yield _WORKING
        pending = b""
        for n, tok in enumerate(llm.generate(tokens, temp=temp, top_p=top_p, top_k=40, repeat_penalty=1.1)):
            if tok in self._stop or n >= max_tokens or len(tokens) + n >= cfg.context:
                if usage is not None:
                    usage.finish_reason = "stop" if tok in self._stop else "length"
                break
            if usage is not None:
                usage.completion_tokens += 1
            if n and n % RECHECK_TOKENS == 0:
                self._fit(cfg.threads, "reply")
            pending += llm.detokenize([tok])
            try:
                piece = pending.decode()
            except UnicodeDecodeError:
                if len(pending) < 8:
                    continue  # the rest of a multi-byte character is in the next token
                piece = pending.decode(errors="replace")
            pending = b""
            yield piece

    # -- async API -----------------------------------------------------------------------------
    def stream(self, messages: Sequence[Message]) -> AsyncGenerator[str, None]:
        if self._llm is None:
            raise RuntimeError("LlamaLLM.load() must run before stream()")
        return self._pieces(messages)

    def stream_with(
        self, messages: Sequence[Message], sampling: Sampling, usage: Usage | None = None
    ) -> AsyncGenerator[str, None]:
        if self._llm is None:
            raise RuntimeError("LlamaLLM.load() must run before stream_with()")
        return self._pieces(messages, sampling, usage)

    async def _pieces(
        self, messages: Sequence[Message], sampling: Sampling | None = None, usage: Usage | None = None
    ) -> AsyncGenerator[str, None]:
        max_tokens = self.config.max_tokens
        if sampling is not None and sampling.max_tokens is not None:
            max_tokens = sampling.max_tokens
        async with contextlib.aclosing(
            self._worker.iterate(lambda: self._generate(messages, max_tokens, sampling, usage))
        ) as pieces:
            async for piece in pieces:
                if piece:  # not _WORKING
                    yield piece

    async def prefill(self, messages: Sequence[Message]) -> None:
        """Evaluate these messages ahead of time. The last (the user's words so far) may still
        change at its end, so its last word and the reply's opening are left for later, and at
        most `PREFILL_STEP` tokens are evaluated per call."""
        if self._llm is None or not messages:
            return
        *done, last = messages
        stable = last.content.rsplit(" ", 1)[0] if " " in last.content.strip() else ""
        if not stable:
            return
        prompt = chatml([*done, Message(last.role, stable)], open_reply=False).removesuffix("<|im_end|>\n")
        await self._worker.run(self._prefill_while_listening, prompt)

    def _prefill_while_listening(self, prompt: str) -> None:
        # The recogniser is busy too while the user speaks: at most `prefill_threads`.
        self._fit(min(self.config.prefill_threads, self.config.threads), "prefill")
        self._prefill(prompt, PREFILL_STEP)

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
        if n != self._n_threads:
            log.debug("llm: %s on %d thread(s)", why, n)
            self._threads(n)

    def _threads(self, n: int) -> None:
        self._llm._ctx.set_n_threads(n, n)  # for single tokens and for batches alike
        self._n_threads = n

    async def aclose(self) -> None:
        self._worker.shutdown()
