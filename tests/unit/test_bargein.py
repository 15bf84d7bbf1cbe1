"""Barge-in rules: the BargeIn state machine alone, then through VoiceSession with fakes.

Virtual time, 32 ms VAD frames, the Mic feeds 20 ms chunks: a tone is speech, zeros are silence.
The agent's reply is LONG_REPLY: 15 words of FakeTTS audio, 0.25 s each.
"""

from __future__ import annotations

import asyncio

import pytest

from conftest import LONG_REPLY, LONG_TEXT, Conversation, conversation, make_providers, roles, run_virtual
from fakes import FakeLLM, FakeSTT
from voxloop.agent import events as ev
from voxloop.agent.bargein import BargeIn, is_backchannel, is_echo
from voxloop.config import TurnConfig, VADConfig

FRAME_MS = 32.0


def _run(probs: list[float]) -> list[tuple[int, str]]:
    b = BargeIn(TurnConfig(), VADConfig(), FRAME_MS)
    return [(i, a) for i, p in enumerate(probs) if (a := b.update(p)) is not None]


def test_a_frame_of_likely_speech_ducks_then_a_second_interrupts() -> None:
    out = _run([0.9] * 40)
    assert out == [(0, "duck"), (31, "interrupt")]  # 32 ms; 32 frames = 1024 ms
    assert _run([0.1, 0.45, 0.9])[0] == (1, "duck")  # a soft onset: 0.45 is enough to pause
    assert _run([0.1, 0.2, 0.3, 0.9])[0] == (2, "duck")  # softer still: two frames at 0.15 or more


def test_one_frame_of_possible_speech_does_not_duck() -> None:
    assert _run([0.3, 0.1] * 10) == []


def test_a_short_burst_is_judged_after_the_silence() -> None:
    out = _run([0.9] * 5 + [0.0] * 10)
    assert out == [(0, "duck"), (12, "judge")]  # 8 silent frames = 256 ms after the burst


def test_sound_below_the_barge_in_threshold_does_not_duck() -> None:
    assert _run([0.14] * 40) == []


def test_speech_after_a_judge_counts_on_toward_an_interruption() -> None:
    out = _run([0.9] * 4 + [0.0] * 8 + [0.9] * 30)
    assert out == [(0, "duck"), (11, "judge"), (39, "interrupt")]  # 4 + 28 frames of speech


@pytest.mark.parametrize(
    ("text", "backchannel"),
    [
        ("", True),
        ("(coughing)", True),
        ("[noise]", True),
        ("Uh-huh.", True),
        ("Mm-hmm", True),
        ("Yeah, okay.", True),
        ("NMM.", True),  # Piper's "Mm-hmm." as tiny.en hears it
        ("Mmm, hmm.", True),
        ("No.", False),
        ("Mom!", False),
        ("Stop.", False),
        ("Wait, what?", False),
        ("No", False),
        ("Okay, stop.", False),
    ],
)
def test_is_backchannel(text: str, backchannel: bool) -> None:
    assert is_backchannel(text) is backchannel


def test_is_echo() -> None:
    said = "One two three four five. Six seven eight, and a story of the sea."
    assert is_echo("three, four five", said)
    assert is_echo("four five", said)
    assert is_echo("well four five six seven", said)  # a run of three of its words, in order
    assert not is_echo("five four", said)  # its words, not in its order
    assert not is_echo("and a grain of the", said)  # common words shared: a reader going on
    assert not is_echo("stop the story", said)
    assert not is_echo("four", said)  # one word cannot tell
    assert not is_echo("", said)


# -- through the session ---------------------------------------------------------------------------
async def _reply_then(c: Conversation, burst_s: float, after_s: float = 1.0) -> None:
    """User turn 1 (1 s), then a burst `after_s` into the agent's voice, then silence till done."""
    await c.mic.silence(0.3)
    await c.mic.speak(1.0)
    assert await c.mic.silence_until(lambda: bool(c.of(ev.AgentSpeech)), 5)
    await c.mic.silence(after_s)
    await c.mic.speak(burst_s)
    assert await c.mic.silence_until(lambda: len(c.of(ev.TurnCompleted)) >= 1, 15), c.kinds()


def test_partial_words_of_the_users_own_interrupt_before_the_burst_ends() -> None:
    stt = FakeSTT(["tell me a story", "stop right there"], partial_every_s=0.3)
    llm = FakeLLM({"tell me a story": LONG_REPLY, "stop right there": ("Okay", ".")})

    async def main() -> None:
        async with conversation(make_providers(stt=stt, llm=llm)) as c:
            await c.mic.silence(0.3)
            await c.mic.speak(1.0)
            assert await c.mic.silence_until(lambda: bool(c.of(ev.AgentSpeech)), 5)
            await c.mic.silence(1.0)
            await c.mic.speak(0.9)  # still speaking when the first partial arrives
            interrupted = c.of(ev.Interrupted)
            assert interrupted and interrupted[0].t < c.of(ev.AgentPaused)[0].t + 0.9
            assert await c.mic.silence_until(c.completed(2), 10)
            assert roles(c.session.history.messages)[-2:] == [
                ("user", "stop right there"),
                ("assistant", "Okay."),
            ]

    run_virtual(main())


def _session(finals: list[str]) -> tuple[FakeSTT, FakeLLM]:
    return FakeSTT(finals), FakeLLM({"tell me a story": LONG_REPLY, "stop": ("Okay", ".")})


@pytest.mark.parametrize(
    ("burst_s", "words", "reason"),
    [
        (0.07, None, "no words"),
        (0.3, "", "no words"),
        (0.3, "Uh-huh.", "backchannel: Uh-huh."),
        (0.3, "four five", "own echo: four five"),
    ],
    ids=["click", "cough", "uh-huh", "own-echo"],
)
def test_a_cough_or_backchannel_pauses_the_agent_then_it_goes_on(
    burst_s: float, words: str | None, reason: str
) -> None:
    stt, llm = _session(["tell me a story"] + ([] if words is None else [words]))

    async def main() -> None:
        async with conversation(make_providers(stt=stt, llm=llm)) as c:
            await _reply_then(c, burst_s)
            assert not c.of(ev.Interrupted)
            paused, resumed = c.of(ev.AgentPaused), c.of(ev.AgentResumed)
            assert len(paused) == len(resumed) == 1 and resumed[0].reason == reason
            # the whole reply was played, once: nothing lost, nothing repeated
            assert c.agent_audio_s == pytest.approx(len(LONG_TEXT.split()) * 0.25, abs=0.01)
            assert roles(c.session.history.messages) == [
                ("user", "tell me a story"),
                ("assistant", LONG_TEXT),
            ]
            assert not list(stt.finals)  # the cough's (empty) words were consumed, not answered
            assert c.kinds(ev.TurnCompleted) == ["TurnCompleted"]
            # the turn log holds what happened, in order, with the session's timestamps
            log = c.session.records[0].to_dict()["events"]
            kinds = [e["type"] for e in log]
            assert kinds[:4] == ["speech_started", "speech_ended", "turn_decided", "final_transcript"]
            assert kinds[-2:] == ["agent_resumed", "playback_finished"] and "agent_paused" in kinds
            if burst_s >= 0.16:  # long enough to open a user turn, which was dropped
                assert kinds[kinds.index("agent_paused") :] == [
                    "agent_paused",
                    "speech_started",
                    "speech_ended",
                    "turn_dropped",
                    "agent_resumed",
                    "playback_finished",
                ]
            assert [e["t"] for e in log] == sorted(e["t"] for e in log)
            # the voice was silent between pause and resume
            gap = resumed[0].t - paused[0].t
            assert gap > 0.25
            assert c.agent_audio_s < (c.mic.fed / c.mic.rate) - 1.3 - gap + 0.5

    run_virtual(main())


def test_a_short_stop_interrupts_and_is_answered() -> None:
    stt, llm = _session(["tell me a story", "stop"])

    async def main() -> None:
        async with conversation(make_providers(stt=stt, llm=llm)) as c:
            await _reply_then(c, 0.3)
            assert await c.mic.silence_until(c.completed(2), 10), c.kinds()
            assert not c.of(ev.AgentResumed)
            heard = c.of(ev.Interrupted)[0].heard_text
            assert 3 <= len(heard.split()) <= 6  # about 1 s of 0.25 s words before the pause
            assert roles(c.session.history.messages) == [
                ("user", "tell me a story"),
                ("assistant", heard),
                ("user", "stop"),
                ("assistant", "Okay."),
            ]

    run_virtual(main())


def test_the_voice_pauses_within_a_frame_of_the_onset() -> None:
    stt, llm = _session(["tell me a story", "stop"])

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with conversation(make_providers(stt=stt, llm=llm)) as c:
            paused_at: list[float] = []
            c.session.subscribe(
                lambda e: paused_at.append(loop.time()) if isinstance(e, ev.AgentPaused) else None
            )
            await c.mic.silence(0.3)
            await c.mic.speak(1.0)
            assert await c.mic.silence_until(lambda: bool(c.of(ev.AgentSpeech)), 5)
            await c.mic.silence(1.0)
            assert c.mic.t0 is not None
            onset = c.mic.t0 + c.mic.fed / c.mic.rate  # when the first speech sample is spoken
            playing = c.sink.played_samples()
            await c.mic.speak(0.6)
            assert await c.mic.silence_until(c.completed(2), 10)
            # 32 ms VAD frames, 20 ms Mic chunks: one frame of speech, plus one of misalignment
            assert 0 < paused_at[0] - onset <= 0.032 + 0.032 + 0.02
            assert c.of(ev.Interrupted)
            # what was played after the pause is nothing of turn 1: the speaker held still
            rate = c.sink.sample_rate
            assert c.sink.played_samples() - playing <= (paused_at[0] - onset) * rate + 0.6 * rate + 1

    run_virtual(main())


def test_half_duplex_never_pauses() -> None:
    stt, llm = _session(["tell me a story", "never heard"])

    async def main() -> None:
        from conftest import config

        async with conversation(make_providers(stt=stt, llm=llm), config(interruptions=False)) as c:
            await _reply_then(c, 0.3)
            assert not c.of(ev.AgentPaused) and not c.of(ev.Interrupted)

    run_virtual(main())
