"""Interruptions, barge-in during the final transcript, and bad input, through VoiceSession with fakes.

Audio is fed by a paced Mic (16 kHz, 20 ms chunks): a tone is speech, zeros are silence. With the
default TurnConfig and 32 ms VAD frames a turn is decided 16 silent frames (512 ms) after the
last speech frame.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import (
    LONG_REPLY,
    LONG_TEXT,
    Conversation,
    config,
    conversation,
    make_providers,
    pending_tasks,
    roles,
    run_virtual,
    tasks_created,
    tone,
)
from fakes import FakeLLM, FakeSTT, FakeVAD
from voxloop.agent import events as ev
from voxloop.errors import AudioFormatError
from voxloop.providers.base import Samples, VADStream


# -- interruptions ---------------------------------------------------------------------------------
async def _speak_over_reply(c: Conversation, after_s: float) -> None:
    """User turn 1, then the user speaks again `after_s` after the agent's voice started."""
    await c.mic.silence(0.3)
    await c.mic.speak(1.0)
    assert await c.mic.silence_until(lambda: bool(c.of(ev.AgentSpeech)), 5)
    await c.mic.silence(after_s)
    await c.mic.speak(0.6)


def test_barge_in_stops_the_agent_and_keeps_what_was_heard() -> None:
    stt = FakeSTT(["tell me a story", "stop please"])
    llm = FakeLLM({"tell me a story": LONG_REPLY, "stop please": ("Okay", ".")})

    async def main() -> None:
        async with conversation(make_providers(stt=stt, llm=llm)) as c:
            await _speak_over_reply(c, after_s=1.0)
            # the voice paused at once; the words (known at the end of the burst) interrupt it
            assert c.of(ev.AgentPaused), c.kinds()
            assert await c.mic.silence_until(lambda: bool(c.of(ev.Interrupted)), 2), c.kinds()
            intr = c.of(ev.Interrupted)[0]
            heard = intr.heard_text
            assert intr.turn_id == 1
            assert heard and len(heard) < len(LONG_TEXT)
            assert LONG_TEXT.split()[: len(heard.split())] == heard.split()  # a prefix, word by word
            # about 1.2 s of 0.25 s words were played before the user had spoken for 160 ms
            assert 3 <= len(heard.split()) <= 6
            assert c.kinds(ev.PlaybackFinished, ev.Interrupted) == ["Interrupted"]

            # the speaker was stopped at once: it holds only what was played, nothing queued
            assert not c.sink.busy()
            assert c.agent_audio_s < 2.0 < len(LONG_TEXT.split()) * 0.25
            assert c.sink.played_samples() == sum(len(p.audio) for p in c.sink.placed)

            rec = c.session.records[0]
            assert rec.interrupted and rec.agent_text == heard
            assert c.of(ev.TurnCompleted)[0].record["interrupted"] is True
            assert roles(c.session.history.messages) == [("user", "tell me a story"), ("assistant", heard)]

            # the interrupting speech is the next turn, and it is answered
            assert await c.mic.silence_until(c.completed(2), 10)
            assert roles(c.session.history.messages) == [
                ("user", "tell me a story"),
                ("assistant", heard),
                ("user", "stop please"),
                ("assistant", "Okay."),
            ]
            assert [r.interrupted for r in c.session.records] == [True, False]

    run_virtual(main())


def test_half_duplex_ignores_speech_while_answering() -> None:
    stt = FakeSTT(["tell me a story", "never heard"])
    llm = FakeLLM({"tell me a story": LONG_REPLY})

    async def main() -> None:
        async with conversation(make_providers(stt=stt, llm=llm), config(interruptions=False)) as c:
            await _speak_over_reply(c, after_s=1.0)
            assert await c.mic.silence_until(c.completed(1), 10)
            await c.mic.silence(1.0)
            assert not c.of(ev.Interrupted)
            assert c.kinds(ev.SpeechStarted, ev.TurnDecided, ev.PlaybackFinished) == [
                "SpeechStarted",
                "TurnDecided",
                "PlaybackFinished",
            ]
            assert c.agent_audio_s == pytest.approx(len(LONG_TEXT.split()) * 0.25)
            assert roles(c.session.history.messages) == [
                ("user", "tell me a story"),
                ("assistant", LONG_TEXT),
            ]
            assert list(stt.finals) == ["never heard"]  # the recogniser was never asked again

    run_virtual(main())


def test_interrupt_when_idle_does_nothing() -> None:
    async def main() -> None:
        async with conversation(make_providers(stt=FakeSTT(["hi"]))) as c:
            await c.session.interrupt()
            await c.turn(1.0)
            await c.session.interrupt()  # the reply has finished
            assert not c.of(ev.Interrupted) and len(c.session.records) == 1

    run_virtual(main())


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("audio", "rate"),
    [
        (np.zeros(320, np.float32), 4000),
        (np.zeros(320, np.float32), 16000.0),
        (np.zeros(320, np.float32), 500_000),
        (np.zeros((320, 2), np.float32), 16000),
        (np.zeros(320, np.int16), 16000),
        (np.array([0.0, np.nan, 0.1], np.float32), 16000),
        (np.array([0.0, np.inf], np.float32), 16000),
    ],
)
def test_bad_audio_is_refused_and_the_session_goes_on(audio: Samples, rate: int) -> None:
    stt = FakeSTT(["still here"])

    async def main() -> None:
        async with conversation(make_providers(stt=stt)) as c:
            await c.mic.speak(0.5)  # halfway into a turn
            with pytest.raises(AudioFormatError):
                await c.session.push_audio(audio, rate)
            await c.mic.speak(0.5)
            assert await c.mic.silence_until(c.completed(1), 10)
            assert c.session.records[0].user_text == "still here"
            assert not c.of(ev.ErrorOccurred)
            # nothing of the refused audio reached the recogniser: exactly the mic's speech + preroll
            assert len(stt.streams[0].pushed) % 512 == 0
            assert not np.isnan(stt.streams[0].pushed).any()

    run_virtual(main())


def test_audio_at_other_rates_is_resampled() -> None:
    stt = FakeSTT(["from a 48 kHz mic"])

    async def main() -> None:
        async with conversation(make_providers(stt=stt)) as c:
            c.mic.rate, c.mic.chunk = 48000, 960
            await c.turn(1.0)
            assert c.session.records[0].user_text == "from a 48 kHz mic"
            assert 1.3 <= c.session.records[0].speech_end_s <= 1.3 + 0.032

    run_virtual(main())


class _RecordingVAD(FakeVAD):
    def __init__(self) -> None:
        super().__init__()
        self.frames: list[Samples] = []

    def stream(self) -> VADStream:
        inner = super().stream()
        frames = self.frames

        class Recording(type(inner)):  # type: ignore[misc]
            def __call__(self, frame: Samples) -> float:
                frames.append(frame.copy())
                return inner(frame)

        return Recording(self)


def test_resampling_does_not_depend_on_how_the_audio_is_blocked() -> None:
    rate = 44100
    audio = tone(1.0, rate, freq=300.0)

    async def heard(block: int) -> Samples:
        vad = _RecordingVAD()
        async with conversation(make_providers(vad=vad)) as c:
            for i in range(0, len(audio), block):
                await c.session.push_audio(audio[i : i + block], rate)
        return np.concatenate(vad.frames)

    async def main() -> None:
        whole, blocked = await heard(len(audio)), await heard(1024)
        assert len(blocked) == len(whole)  # 31 frames either way for 1 s
        err = blocked - whole
        snr_db = 10 * np.log10(np.mean(whole**2) / (np.mean(err**2) + 1e-20))
        assert snr_db > 40, f"blocked input differs from whole input: SNR {snr_db:.1f} dB"

    run_virtual(main())


# -- barge-in while the final transcript is being computed -------------------------------------------
async def _barge_in_during_finalize(c: Conversation) -> None:
    """Turn 1 is answered; in turn 2 the user speaks again while `finalize` (400 ms) runs."""
    await c.turn(1.0)
    await c.mic.silence(0.3)
    await c.mic.speak(1.0)
    assert await c.mic.silence_until(lambda: len(c.of(ev.TurnDecided)) == 2, 5)
    assert not c.of(ev.FinalTranscript)[1:], "finalize should still be running"
    await c.mic.speak(1.0)
    # that speech is a turn of its own, answered in full (turn 1 and it: two playbacks)
    assert await c.mic.silence_until(lambda: len(c.of(ev.PlaybackFinished)) == 2, 10)


def test_barge_in_during_finalize_leaves_the_previous_turn_alone() -> None:
    stt = FakeSTT(["one", "two", "three"], finalize_delay=0.4)

    async def main() -> None:
        async with conversation(make_providers(stt=stt)) as c:
            await _barge_in_during_finalize(c)
            assert all(e.turn_id != 1 for e in c.of(ev.Interrupted)), c.of(ev.Interrupted)
            ids = [r.turn_id for r in c.session.records]
            assert len(ids) == len(set(ids)), f"a turn was completed twice: {ids}"
            assistant = [m.content for m in c.session.history.messages if m.role == "assistant"]
            assert len(assistant) == len(c.of(ev.PlaybackFinished)), roles(c.session.history.messages)

    run_virtual(main())


def test_barge_in_during_finalize_cancels_the_held_reply() -> None:
    stt = FakeSTT(["one", "two", "three"], finalize_delay=0.4)

    async def main() -> None:
        start = tasks_created()
        async with conversation(make_providers(stt=stt)) as c:
            await _barge_in_during_finalize(c)
            await c.session.aclose()
            left = pending_tasks(start)
            assert not left, f"still running after aclose: {left}"

    run_virtual(main())
