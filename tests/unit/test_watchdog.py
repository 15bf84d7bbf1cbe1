"""The watchdog: a slow LLM gets a filler, a stuck stage an error event, a stuck speaker a ceiling.

Virtual time with fakes: FakeTTS speaks 0.25 s per word; the default deadlines are a filler after
2.5 s without a token and abandoning a stage after 12 s.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from conftest import conversation, make_providers, roles, run_virtual
from fakes import FakeLLM, FakeSTT
from voxloop.agent import events as ev
from voxloop.agent.watchdog import played_out
from voxloop.providers.base import Samples
from voxloop.transports.timeline import TimelineSink


def test_a_slow_first_token_gets_a_filler_then_the_answer() -> None:
    llm = FakeLLM({"hello": ("Hi", " there", ".")}, first_delay=4.0)

    async def main() -> None:
        async with conversation(make_providers(stt=FakeSTT(["hello"]), llm=llm)) as c:
            await c.turn(1.0)
            spoken = [e.text for e in c.of(ev.AgentSpeech)]
            assert spoken == ["One moment.", "Hi there."]
            rec = c.session.records[0]
            assert rec.marks["filler"] - rec.marks["llm_request"] == pytest.approx(2.5, abs=0.01)
            # history keeps what the model said, not the filler
            assert roles(c.session.history.messages) == [("user", "hello"), ("assistant", "Hi there.")]
            assert not c.of(ev.ErrorOccurred)

    run_virtual(main())


def test_the_filler_is_said_once_however_slow_every_token_is_and_the_answer_follows_it() -> None:
    """A busy machine: the first token after 4 s, then one every 3 s (each slower than the filler's
    2.5 s). One filler, then the whole answer, each piece of audio after the one before: with the
    text this much slower than speech, each word is said as soon as it is complete."""
    llm = FakeLLM({"hello": ("Hi", " there", ".", " How", " are", " you", "?")}, first_delay=4.0, delay=3.0)

    async def main() -> None:
        async with conversation(make_providers(stt=FakeSTT(["hello"]), llm=llm)) as c:
            await c.turn(1.0, max_s=60)
            said = [e.text for e in c.of(ev.AgentSpeech)]
            assert said == ["One moment.", "Hi", "there.", "How", "are", "you?"]
            assert not c.of(ev.ErrorOccurred)
            rec = c.session.records[0]
            assert rec.agent_text == "One moment. Hi there. How are you?"
            assert not rec.interrupted
            starts = [p.start for p in c.sink.placed]
            ends = [p.start + len(p.audio) / c.sink.sample_rate for p in c.sink.placed]
            assert all(b >= a for a, b in zip(ends, starts[1:], strict=False))  # never over each other
            assert roles(c.session.history.messages)[-1] == ("assistant", "Hi there. How are you?")

    run_virtual(main())


def test_a_stuck_llm_ends_the_turn_with_an_error_event_and_the_session_goes_on() -> None:
    stuck = FakeLLM({"hello": ("Hi", ".")}, first_delay=10_000.0)

    async def main() -> None:
        async with conversation(make_providers(stt=FakeSTT(["hello", "again"]), llm=stuck)) as c:
            await c.turn(1.0, max_s=30)
            err = c.of(ev.ErrorOccurred)
            assert [(e.code, e.stage) for e in err] == [("stage_timeout", "language model")]
            assert [e.text for e in c.of(ev.AgentSpeech)] == ["One moment."]
            assert stuck.calls[0].closed_early  # the stuck stream was abandoned, not left running
            stuck.first_delay = 0.0
            await c.turn(1.0)
            assert c.session.records[-1].agent_text == "Sure, happy to help."

    run_virtual(main())


class _DeafSink(TimelineSink):
    """A speaker that never reports the end of playback (a stuck device or a silent client)."""

    async def drained(self) -> None:
        await asyncio.Event().wait()


def test_a_speaker_that_never_drains_is_given_up_on_at_the_ceiling() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        sink = _DeafSink(24000)
        sink.play(_audio(1.0))
        t0 = loop.time()
        assert await played_out(sink, idle_ms=250, ceiling_s=2.0) is False
        assert loop.time() - t0 == pytest.approx(3.0, abs=0.01)  # 1 s of audio + the 2 s ceiling

    run_virtual(main())


def test_playback_is_finished_once_the_queue_stays_empty() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        sink = TimelineSink(24000)
        sink.play(_audio(0.5))
        t0 = loop.time()
        waiter = loop.create_task(played_out(sink, idle_ms=250, ceiling_s=2.0))
        await asyncio.sleep(0.6)  # the speaker is empty now; 0.15 s later more audio arrives
        sink.play(_audio(0.5))
        assert await waiter is True
        assert loop.time() - t0 == pytest.approx(0.6 + 0.5 + 0.25, abs=0.01)

    run_virtual(main())


def _audio(seconds: float) -> Samples:
    return np.full(int(seconds * 24000), 0.1, np.float32)


def test_a_stuck_recogniser_ends_the_turn_with_an_error_event() -> None:
    stt = FakeSTT(["hello", "again"], finalize_delay=10_000.0)

    async def main() -> None:
        async with conversation(make_providers(stt=stt)) as c:
            await c.turn(1.0, max_s=30)
            err = c.of(ev.ErrorOccurred)
            assert [(e.code, e.stage) for e in err] == [("stage_timeout", "recogniser")]
            assert not c.of(ev.AgentSpeech)

    run_virtual(main())
