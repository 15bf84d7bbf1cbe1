"""LlamaLLM around a fake llama.cpp: the reply's prompt in steps (an abandoned reply frees the model
within one), and the thread count fitted to the cores other processes leave free."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from voxloop.config import LLMConfig
from voxloop.providers.base import Message
from voxloop.providers.llm.llama import PROMPT_STEP, RECHECK_TOKENS, LlamaLLM, chatml

END = b"<|im_end|>"


class FakeCtx:
    def __init__(self) -> None:
        self.threads: list[int] = []

    def kv_cache_seq_rm(self, seq: int, p0: int, p1: int) -> bool:
        return True

    def set_n_threads(self, n: int, n_batch: int) -> None:
        assert n == n_batch
        self.threads.append(n)


class FakeLlama:
    """Words are tokens. `generate` evaluates what the cache lacks (at least the last token, as
    llama.cpp does for its logits), then yields `reply`, one token per piece."""

    def __init__(self, reply: Sequence[bytes]) -> None:
        self.reply = list(reply)
        self.vocab: dict[bytes, int] = {END: 3}
        self.input_ids = np.zeros(4096, np.intc)
        self.n_tokens = 0
        self._ctx = FakeCtx()
        self.evals: list[int] = []  # tokens per eval call
        self.hold: threading.Event | None = None  # eval waits for this, if set
        self.entered = threading.Event()

    @property
    def _input_ids(self) -> Any:
        return self.input_ids[: self.n_tokens]

    def tokenize(self, text: bytes, add_bos: bool = False, special: bool = False) -> list[int]:
        return [self.vocab.setdefault(w, len(self.vocab) + 10) for w in text.split()]

    def token_eos(self) -> int:
        return 2

    def eval(self, tokens: Sequence[int]) -> None:
        self.entered.set()
        if self.hold is not None:
            assert self.hold.wait(60), "the test never released eval"
        self.input_ids[self.n_tokens : self.n_tokens + len(tokens)] = tokens
        self.n_tokens += len(tokens)
        self.evals.append(len(tokens))

    def generate(self, tokens: Sequence[int], **_: Any) -> Iterator[int]:
        keep = 0
        for a, b in zip(self._input_ids, tokens, strict=False):
            if a != b:
                break
            keep += 1
        self.n_tokens = min(keep, len(tokens) - 1)
        self.eval(list(tokens[self.n_tokens :]))
        for i, piece in enumerate(self.reply):
            tok = self.vocab[END] if piece == END else 1000 + i
            yield tok
            self.eval([tok])

    def detokenize(self, tokens: Sequence[int]) -> bytes:
        return self.reply[tokens[0] - 1000]


class FakeMonitor:
    """Scripted thread counts (the last repeats); `limit` still caps them."""

    n_cores = 2

    def __init__(self, *counts: int, others: float = 1.4) -> None:
        self.counts = list(counts)
        self.last_others: float | None = others

    def threads_for(self, limit: int) -> int:
        n = self.counts.pop(0) if len(self.counts) > 1 else self.counts[0]
        return min(limit, n)


def make(reply: Sequence[bytes] = (b"Hi", b" there", b"."), *counts: int) -> tuple[LlamaLLM, FakeLlama]:
    llm = LlamaLLM(LLMConfig(threads=2, prefill_threads=1))
    fake = FakeLlama(reply)
    llm._llm = fake
    llm._stop = {fake.token_eos(), *fake.tokenize(END)}
    llm._cpu = FakeMonitor(*(counts or (2,)))  # type: ignore[assignment]
    return llm, fake


def messages(words: int) -> list[Message]:
    return [Message("system", "Be brief."), Message("user", " ".join(f"w{i}" for i in range(words)))]


def test_a_long_prompt_is_evaluated_in_steps_and_its_last_step_in_one_batch() -> None:
    llm, fake = make()

    async def main() -> str:
        try:
            return "".join([p async for p in llm.stream(messages(40))])
        finally:
            await llm.aclose()

    assert asyncio.run(main()) == "Hi there."
    prompt = len(fake.tokenize(chatml(messages(40)).encode()))
    full, rest = divmod(prompt, PROMPT_STEP)
    if not rest:
        full, rest = full - 1, PROMPT_STEP
    # whole steps while more than one step is left; the rest (the last token with it) in one
    # batch by llama.cpp; then one evaluation per generated token
    assert fake.evals == [*[PROMPT_STEP] * full, rest, 1, 1, 1]


def test_a_short_prompt_is_evaluated_in_one_batch() -> None:
    llm, fake = make()
    short = [Message("user", "hello there")]

    async def main() -> str:
        try:
            return "".join([p async for p in llm.stream(short)])
        finally:
            await llm.aclose()

    assert asyncio.run(main()) == "Hi there."
    assert fake.evals == [len(fake.tokenize(chatml(short).encode())), 1, 1, 1]


def test_an_abandoned_reply_frees_the_model_after_the_step_under_way() -> None:
    llm, fake = make()
    fake.hold = threading.Event()

    async def main() -> None:
        try:
            stream = llm.stream(messages(60))
            first = asyncio.get_running_loop().create_task(anext(stream))
            await asyncio.to_thread(fake.entered.wait, 60)  # the first prompt step is being evaluated
            first.cancel()  # the user went on speaking: the reply is dropped
            with contextlib.suppress(asyncio.CancelledError):
                await first
            await stream.aclose()
            fake.hold.set()  # the step under way finishes ...
            await llm._worker.run(lambda: None)  # ... and the model is free for the next job
        finally:
            await llm.aclose()

    asyncio.run(main())
    assert fake.evals == [PROMPT_STEP]  # nothing after the step that was under way


def test_threads_follow_the_load_and_changes_are_logged_in_words(caplog: pytest.LogCaptureFixture) -> None:
    reply = [f" t{i}".encode() for i in range(3 * RECHECK_TOKENS)] + [END]
    # the reply starts on a busy machine (1 thread); the load goes away after 8 tokens
    llm, fake = make(reply, 1, 2)

    async def main() -> str:
        try:
            return "".join([p async for p in llm.stream(messages(3))])
        finally:
            await llm.aclose()

    with caplog.at_level(logging.INFO, logger="voxloop.llm"):
        text = asyncio.run(main())
    assert text.split() == [f"t{i}" for i in range(3 * RECHECK_TOKENS)]
    assert fake._ctx.threads == [1, 2]
    said = [r.getMessage() for r in caplog.records if r.name == "voxloop.llm"]
    assert said == [
        "llm: other processes keep 1.4 of 2 cores busy: reply on 1 thread(s), not 2",
        "llm: the cores are free again: reply on 2 thread(s)",
    ]


def test_prefill_while_listening_takes_one_thread_quietly_and_the_reply_takes_both(
    caplog: pytest.LogCaptureFixture,
) -> None:
    llm, fake = make()

    async def main() -> None:
        try:
            await llm.prefill(messages(12))
            assert "".join([p async for p in llm.stream(messages(12))]) == "Hi there."
        finally:
            await llm.aclose()

    with caplog.at_level(logging.INFO, logger="voxloop.llm"):
        asyncio.run(main())
    assert fake._ctx.threads == [1, 2]  # the configured prefill threads, then the reply's
    assert not [r for r in caplog.records if r.name == "voxloop.llm"]  # routine: nothing at INFO


def test_a_busy_machine_is_reported_once_not_at_every_prefill_in_between(
    caplog: pytest.LogCaptureFixture,
) -> None:
    llm, fake = make((b"Hi", b"."), 1)  # always busy

    async def main() -> None:
        try:
            for _ in range(2):
                await llm.prefill(messages(12))
                assert "".join([p async for p in llm.stream(messages(12))]) == "Hi."
        finally:
            await llm.aclose()

    with caplog.at_level(logging.INFO, logger="voxloop.llm"):
        asyncio.run(main())
    assert fake._ctx.threads == [1]  # set once, then kept
    said = [r.getMessage() for r in caplog.records if r.name == "voxloop.llm"]
    assert said == ["llm: other processes keep 1.4 of 2 cores busy: reply on 1 thread(s), not 2"]
