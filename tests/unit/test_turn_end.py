"""Ending the user's turn, through the session (virtual time, fakes): `end_turn` (push-to-talk
released) decides at once; adaptive end silence: a user who goes on talking after
their turn was decided, before they could be answering the agent's voice, had paused mid-thought;
their next pause of that length does not end the turn. (FakeLLM and FakeTTS answer at once: the
agent's voice starts as the turn is decided, 0.5 s into the silence.)"""

from __future__ import annotations

from conftest import config, conversation, make_providers, run_virtual
from fakes import FakeLLM, FakeSTT
from voxloop.agent import events as ev


async def _speaker_who_pauses(pause_s: float, adaptive: bool = True) -> tuple[int, float, list[str]]:
    """Speak, pause `pause_s`, go on (over the agent), pause `pause_s` again, finish.
    Returns how many turns were decided, the last one's endpoint_ms and what the recogniser was
    told the user's words went on from."""
    stt = FakeSTT(["tell me a story", "about a dragon", "who could fly", "and more"])
    async with conversation(make_providers(stt=stt), config(adaptive_silence=adaptive)) as c:
        await c.mic.silence(0.3)
        await c.mic.speak(1.0)
        await c.mic.silence(pause_s)  # decided after 0.5 s: the agent starts to answer
        await c.mic.speak(1.2)  # ... and is talked over
        await c.mic.silence(pause_s)  # the same pause again
        await c.mic.speak(0.6)
        assert await c.mic.silence_until(lambda: bool(c.of(ev.PlaybackFinished)), 10), c.kinds()
        told = [x for x in stt.streams[0].log if x.startswith("continues")]
        return len(c.of(ev.TurnDecided)), c.session.records[-1].endpoint_ms or 0.0, told


def test_a_pause_the_user_went_on_after_no_longer_ends_their_turn() -> None:
    decided, endpoint_ms, told = run_virtual(_speaker_who_pauses(0.7))
    assert decided == 2  # the first pause cut the turn; the second, as long, did not
    assert 800 <= endpoint_ms <= 900  # the 0.7 s pause (as the VAD saw it) + the 150 ms margin
    assert told == ["continues: tell me a story"]  # the recogniser's context for what followed


def test_with_fixed_silence_every_such_pause_ends_the_turn() -> None:
    decided, endpoint_ms, told = run_virtual(_speaker_who_pauses(0.7, adaptive=False))
    assert decided == 3
    assert endpoint_ms < 600
    assert told  # the context still helps the recogniser


def test_talking_over_the_agents_voice_after_hearing_it_is_a_barge_in_not_a_pause() -> None:
    decided, endpoint_ms, told = run_virtual(_speaker_who_pauses(1.3))
    assert decided == 3  # 0.8 s into the agent's voice: a reply to it; nothing adapts
    assert endpoint_ms < 600
    assert told == []


def test_end_turn_decides_at_once_and_before_any_speech_does_nothing() -> None:
    async def main() -> None:
        async with conversation(make_providers(stt=FakeSTT(["tell me a story"]))) as c:
            await c.session.end_turn()  # nothing said yet
            await c.mic.silence(0.3)
            await c.mic.speak(1.0)
            await c.mic.silence(0.1)
            assert not c.of(ev.TurnDecided)
            await c.session.end_turn()  # push-to-talk released
            assert len(c.of(ev.TurnDecided)) == 1
            assert await c.mic.silence_until(lambda: bool(c.of(ev.PlaybackFinished)), 10), c.kinds()
            rec = c.session.records[0]
            assert rec.user_text == "tell me a story"
            assert rec.endpoint_ms is not None and rec.endpoint_ms <= 150  # not the 500 ms silence

    run_virtual(main())


# -- the turn is decided when its answer could be heard ---------------------------------------------
async def _answered_after(first_delay: float, ready_wait_ms: int = 1100) -> tuple[float, float, int]:
    """One turn whose reply's first token takes `first_delay` s: (endpoint_ms, v2v_ms, turns decided)."""
    providers = make_providers(stt=FakeSTT(["what time is it"]), llm=FakeLLM(first_delay=first_delay))
    async with conversation(providers, config(ready_wait_ms=ready_wait_ms)) as c:
        await c.mic.silence(0.3)
        await c.mic.speak(1.0)
        assert await c.mic.silence_until(lambda: bool(c.of(ev.PlaybackFinished)), 10), c.kinds()
        rec = c.session.records[-1]
        return rec.endpoint_ms or 0.0, rec.v2v_ms or 0.0, len(c.of(ev.TurnDecided))


def test_a_turn_is_decided_when_its_answer_gets_ready_not_before() -> None:
    """The reply, started at the pause (~128 ms), has audio ~0.6 s later: the turn is decided then,
    not at 500 ms of silence, and the voice starts at that moment (no frame's wait)."""
    endpoint_ms, v2v_ms, decided = run_virtual(_answered_after(0.6))
    assert decided == 1
    assert 700 <= endpoint_ms <= 800
    assert v2v_ms - endpoint_ms < 5


def test_an_answer_ready_before_the_end_silence_waits_for_it() -> None:
    endpoint_ms, _, _ = run_virtual(_answered_after(0.0))
    assert 500 <= endpoint_ms < 540


def test_a_slow_answer_is_waited_for_at_most_ready_wait_ms() -> None:
    endpoint_ms, _, _ = run_virtual(_answered_after(3.0))
    assert 1100 <= endpoint_ms < 1140
    endpoint_ms, _, _ = run_virtual(_answered_after(3.0, ready_wait_ms=0))  # ready or not
    assert 500 <= endpoint_ms < 540


def test_going_on_before_the_answer_is_ready_keeps_the_turn() -> None:
    """A pause of 0.7 s, longer than the end silence, while the reply is not ready yet: the user
    goes on within the same turn (nothing was decided, so nothing was cut off)."""

    async def main(ready_wait_ms: int) -> int:
        stt = FakeSTT(["tell me a story", "tell me a story about a dragon"])
        providers = make_providers(stt=stt, llm=FakeLLM(first_delay=1.0))
        async with conversation(providers, config(ready_wait_ms=ready_wait_ms)) as c:
            await c.mic.silence(0.3)
            await c.mic.speak(1.0)
            await c.mic.silence(0.7)
            await c.mic.speak(1.0)
            assert await c.mic.silence_until(lambda: bool(c.of(ev.PlaybackFinished)), 10), c.kinds()
            return len(c.of(ev.TurnDecided))

    assert run_virtual(main(1100)) == 1
    assert run_virtual(main(0)) == 2  # decided at 500 ms, then gone on from
