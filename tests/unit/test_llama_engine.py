"""One model, several conversations (providers/llm/engine.py) on a fake llama.cpp: each keeps its
own cache, their tokens share each step, a turn's first tokens come before another's
continuation, nobody starves, and abandoned or failed work frees the model."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator

import numpy as np
import pytest
from llama_fake import FakeBackend, FakeMonitor

from voxloop.config import LLMConfig
from voxloop.providers.base import Message
from voxloop.providers.llm.engine import PREFILL_STEP, PROMPT_STEP
from voxloop.providers.llm.llama import LlamaLLM, chatml

SYSTEM = "Be brief."


@contextlib.asynccontextmanager
async def model(fake: FakeBackend, *counts: int, slots: int = 4) -> AsyncIterator[LlamaLLM]:
    llm = LlamaLLM(LLMConfig(threads=2, prefill_threads=1, slots=slots, system_prompt=SYSTEM))
    llm._backend = lambda: fake  # type: ignore[method-assign]
    llm._cpu = FakeMonitor(*counts)  # type: ignore[assignment]
    await llm.load()
    fake.batches.clear()
    try:
        yield llm
    finally:
        await llm.aclose()


def said(words: int, who: str = "u") -> list[Message]:
    return [Message("system", SYSTEM), Message("user", " ".join(f"{who}{i}" for i in range(words)))]


async def reply(llm: LlamaLLM, messages: list[Message]) -> str:
    return "".join([p async for p in llm.stream(messages)])


def new_tokens(fake: FakeBackend, seq: int) -> int:
    return sum(n for step in fake.batches for s, n, _ in step if s == seq)


def test_a_long_prompt_is_read_in_steps_then_one_token_per_step() -> None:
    fake = FakeBackend()

    async def main() -> str:
        async with model(fake) as llm:
            return await reply(llm, said(40))

    assert asyncio.run(main()) == " w0 w1 w2"
    system = len(fake.tokenize(chatml([Message("system", SYSTEM)], open_reply=False)))
    prompt = len(fake.tokenize(chatml(said(40)))) - system  # the system prompt comes from the template
    full, rest = divmod(prompt, PROMPT_STEP)
    steps = [n for step in fake.batches for _, n, _ in step]
    assert steps == [*[PROMPT_STEP] * full, *([rest] if rest else []), 1, 1, 1]
    assert fake.copies and fake.copies[0][2] == system


def test_each_conversation_keeps_its_own_cache_while_others_talk() -> None:
    fake = FakeBackend()

    async def main() -> int:
        async with model(fake) as llm:
            a1 = said(6, "a")
            a_reply = await reply(llm, a1)
            await reply(llm, said(6, "b"))  # another conversation in between
            fake.batches.clear()
            a2 = [*a1, Message("assistant", a_reply.strip()), Message("user", "a6 a7 a8")]
            await reply(llm, a2)
            whole = len(fake.tokenize(chatml(a2)))
            before = len(fake.tokenize(chatml(a1))) + 3  # a's first prompt and reply were cached
            return whole - before

    new = asyncio.run(main())
    seqs = {s for step in fake.batches for s, _, _ in step}
    assert len(seqs) == 1  # one slot, a's own
    # only what is new since a's first reply is read (a little more: the reply's end and the
    # next prompt's opening), then the 3 words and the end
    assert sum(n for step in fake.batches for _, n, _ in step) == new + 3


def test_speaking_replies_share_each_step() -> None:
    fake = FakeBackend(reply_len=8)

    async def main() -> list[str]:
        async with model(fake) as llm:
            fake.gate = threading.Semaphore(0)  # no step until both conversations have asked
            both = asyncio.gather(reply(llm, said(3, "a")), reply(llm, said(3, "b")))
            await asyncio.sleep(0)  # each request runs until it waits for its first piece: submitted
            for _ in range(100):
                fake.gate.release()
            return list(await both)

    assert asyncio.run(main()) == [" " + " ".join(f"w{i}" for i in range(8))] * 2
    shared = [step for step in fake.batches if len(step) == 2 and all(n == 1 for _, n, _ in step)]
    assert len(shared) >= 6  # both conversations' next tokens in one evaluation


def test_a_turns_first_token_comes_before_anothers_continuation_which_never_stops() -> None:
    fake = FakeBackend(reply_len=60)

    async def main() -> tuple[int, int]:
        async with model(fake) as llm:
            fake.gate = threading.Semaphore(1)  # one step: a's prompt, and its first token
            a = llm.stream(said(3, "a"))
            await anext(a)  # a is speaking (its next step waits for a permit)
            b_first = asyncio.get_running_loop().create_task(anext(llm.stream(said(50, "b"))))
            await asyncio.sleep(0)  # b's request runs until it waits for its first piece: submitted
            for _ in range(100):
                fake.gate.release()
            await b_first
            steps = len(fake.batches)
            await a.aclose()
            return steps, fake.cells[1].count(fake.word("b49"))

    steps, seen = asyncio.run(main())
    a_seq, b_seq = 0, 1
    reading = [step for step in fake.batches if any(s == b_seq and n > 1 for s, n, _ in step)]
    assert reading, "b's prompt was never read in slices"
    for step in reading:  # a's reply rode along with every slice of b's prompt
        assert (a_seq, 1, True) in step
        assert sum(n for s, n, _ in step if s == b_seq) <= PROMPT_STEP
    assert seen == 1


def test_more_conversations_than_slots_take_turns_and_none_starves() -> None:
    fake = FakeBackend(n_seq=3, reply_len=4)  # 2 slots

    async def main() -> list[str]:
        async with model(fake, slots=2) as llm:
            return list(await asyncio.gather(*(reply(llm, said(5, w)) for w in "abcd")))

    assert asyncio.run(main()) == [" w0 w1 w2 w3"] * 4
    assert max(len(step) for step in fake.batches) <= 2


def test_an_abandoned_reply_frees_the_model_after_the_step_under_way() -> None:
    fake = FakeBackend()

    async def main() -> str:
        async with model(fake) as llm:
            fake.hold = threading.Event()
            fake.entered.clear()
            stream = llm.stream(said(60))
            first = asyncio.get_running_loop().create_task(anext(stream))
            await asyncio.to_thread(fake.entered.wait, 60)  # the first step is being evaluated
            first.cancel()  # the user went on speaking: the reply is dropped
            with contextlib.suppress(asyncio.CancelledError):
                await first
            await stream.aclose()
            fake.hold.set()
            return await reply(llm, said(2, "z"))  # the next job runs

    assert asyncio.run(main()) == " w0 w1 w2"
    assert fake.batches[0] == [(0, PROMPT_STEP, False)]  # the step that was under way ...
    assert not any(fake.word("u20") in cells for cells in fake.cells)  # ... and no more of that prompt


def test_a_prefill_reads_a_few_words_and_gives_way_to_its_reply() -> None:
    fake = FakeBackend()

    async def main() -> str:
        async with model(fake) as llm:
            await llm.prefill(said(12))
            return await reply(llm, said(12))

    assert asyncio.run(main()) == " w0 w1 w2"
    first = fake.batches[0]
    assert len(first) == 1 and first[0][1] == PREFILL_STEP and not first[0][2]
    assert {s for step in fake.batches for s, _, _ in step} == {0}  # the reply found the prefilled slot


def test_a_failed_step_is_the_consumers_error_and_the_model_serves_on() -> None:
    fake = FakeBackend()

    async def main() -> str:
        async with model(fake) as llm:
            fake.fail_next = True
            with pytest.raises(RuntimeError, match="llama_decode"):
                await reply(llm, said(4))
            return await reply(llm, said(4))

    assert asyncio.run(main()) == " w0 w1 w2"


def test_threads_follow_the_load_and_changes_are_logged_in_words(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeBackend(reply_len=6)

    async def main() -> str:
        async with model(fake, 1, 1, 1, 2) as llm:  # busy for the first steps, then free
            return await reply(llm, said(3))

    with caplog.at_level(logging.INFO, logger="voxloop.llm"):
        assert asyncio.run(main()).split() == [f"w{i}" for i in range(6)]
    assert fake.threads == [1, 2]
    messages = [
        r.getMessage() for r in caplog.records if r.name == "voxloop.llm" and "thread" in r.getMessage()
    ]
    assert messages == [
        "llm: other processes keep 1.4 of 2 cores busy: reply on 1 thread(s), not 2",
        "llm: the cores are free again: reply on 2 thread(s)",
    ]


def test_a_prefill_takes_one_thread_quietly_and_the_reply_takes_both(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeBackend()

    async def main() -> None:
        async with model(fake) as llm:
            await llm.prefill(said(12))
            assert await reply(llm, said(12)) == " w0 w1 w2"

    with caplog.at_level(logging.INFO, logger="voxloop.llm"):
        asyncio.run(main())
    assert fake.threads == [1, 2]
    assert not [r for r in caplog.records if r.name == "voxloop.llm" and "thread" in r.getMessage()]


def test_a_busy_machine_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeBackend(reply_len=2)

    async def main() -> None:
        async with model(fake, 1) as llm:
            for _ in range(2):
                await llm.prefill(said(12))
                assert await reply(llm, said(12)) == " w0 w1"

    with caplog.at_level(logging.INFO, logger="voxloop.llm"):
        asyncio.run(main())
    assert fake.threads == [1]
    messages = [
        r.getMessage() for r in caplog.records if r.name == "voxloop.llm" and "thread" in r.getMessage()
    ]
    assert messages == ["llm: other processes keep 1.4 of 2 cores busy: reply on 1 thread(s), not 2"]


def test_a_short_prompt_overtakes_a_long_one_being_read() -> None:
    fake = FakeBackend(reply_len=2)

    async def main() -> tuple[int, int]:
        async with model(fake) as llm:
            fake.hold, fake.entered = threading.Event(), threading.Event()
            long = asyncio.get_running_loop().create_task(reply(llm, said(300, "a")))
            await asyncio.to_thread(fake.entered.wait, 10)  # the long prompt's first slice is under way
            short = llm.stream(said(3, "b"))
            first = asyncio.get_running_loop().create_task(anext(short))
            await asyncio.sleep(0)  # the task runs until it waits for its first piece: submitted
            fake.hold.set()
            assert await first == " w0"
            await short.aclose()
            await long
            # the step that gave the short turn its first token, and how much of the long
            # prompt had been read up to it (the fake runs ahead meanwhile: count in its steps)
            at = next(
                i
                for i, step in enumerate(fake.batches)
                if step != (1, 0, True) and any(s == 1 and lg for s, _, lg in step)
            )
            return sum(n for step in fake.batches[: at + 1] for s, n, _ in step if s == 0), len(fake.cells[0])

    at_short, whole = asyncio.run(main())
    assert at_short <= 2 * PROMPT_STEP + 16  # the short turn did not wait for the long prompt
    assert whole > 300


def test_a_prompt_asked_again_starts_from_the_scores_its_end_had() -> None:
    fake = FakeBackend(reply_len=3)

    async def main() -> tuple[str, str]:
        async with model(fake) as llm:
            first = await reply(llm, said(5))
            fake.batches.clear()
            return first, await reply(llm, said(5))

    first, again = asyncio.run(main())
    assert first == again == " w0 w1 w2"
    # nothing of the prompt is evaluated again (not even its last token): the generated ones only
    assert [n for step in fake.batches for _, n, _ in step] == [1, 1, 1]


class NearTie(FakeBackend):
    """The "model" prefers "echo" (a word of the prompt) to "other" by a little at each of the
    reply's first two tokens, then ends."""

    def _next(self, cells: list[int]) -> np.ndarray:
        start = max(i for i, t in enumerate(cells) if t == self.vocab.get("assistant", -1)) + 1
        row = np.full(512, -30.0, np.float32)
        if len(cells) - start >= 2:
            row[self.vocab["<|im_end|>"]] = 10.0
        else:
            row[self.word("echo")], row[self.word("other")] = 10.0, 9.5
        return row


def test_the_repetition_penalty_counts_the_reply_not_the_prompt() -> None:
    """The caller said "echo": the reply may say it too (a penalty over the prompt's last tokens kept
    the model from writing the tool call its system prompt had just shown), but not twice."""
    fake = NearTie()

    async def main() -> str:
        config = LLMConfig(threads=2, prefill_threads=1, slots=2, system_prompt=SYSTEM, temperature=0.0)
        llm = LlamaLLM(config)
        llm._backend = lambda: fake  # type: ignore[method-assign]
        llm._cpu = FakeMonitor()  # type: ignore[assignment]
        await llm.load()
        try:
            return await reply(llm, [Message("system", SYSTEM), Message("user", "say echo")])
        finally:
            await llm.aclose()

    assert asyncio.run(main()) == " echo other"
