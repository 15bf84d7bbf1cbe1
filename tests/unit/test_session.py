"""Whole conversations through VoiceSession with fake providers, in virtual time.

Audio is fed by a paced Mic (16 kHz, 20 ms chunks): a tone is speech, zeros are silence. With the
default TurnConfig and 32 ms VAD frames a turn is decided 16 silent frames (512 ms) after the
last speech frame.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import (
    Conversation,
    conversation,
    make_providers,
    pending_tasks,
    run_virtual,
    tasks_created,
    tone,
)
from fakes import FakeLLM, FakeSTT, FakeTTS, FakeVAD
from voxloop.agent import events as ev
from voxloop.agent.chunker import clean_for_speech
from voxloop.config import AgentConfig, TurnConfig
from voxloop.errors import AudioFormatError, ProviderError
from voxloop.providers.base import Message, Samples, VADStream

LONG_REPLY = (
    "One",
    " two",
    " three",
    " four",
    " five",
    ".",
    " Six",
    " seven",
    " eight",
    " nine",
    " ten",
    ".",
    " Eleven",
    " twelve",
    " thirteen",
    " fourteen",
    " fifteen",
    ".",
)
LONG_TEXT = clean_for_speech("".join(LONG_REPLY))  # 15 words: 3.75 s of FakeTTS audio


def config(**turn: object) -> AgentConfig:
    return AgentConfig(turn=dataclasses.replace(TurnConfig(), **turn))


def roles(messages: list[Message]) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in messages]


# -- one turn --------------------------------------------------------------------------------------
def test_one_turn_events_in_order_and_record_consistent() -> None:
    stt = FakeSTT(["what is the capital of france"])
    llm = FakeLLM({"what is the capital of france": ("Paris", " is", " the", " capital", ".")}, delay=0.05)
    tts = FakeTTS(delay=0.03)

    async def main() -> None:
        async with conversation(make_providers(stt=stt, llm=llm, tts=tts)) as c:
            await c.turn(1.0)
            await c.mic.silence(0.5)  # nothing more happens after the turn

            keep = (ev.TurnDecided, ev.FinalTranscript, ev.AgentSpeech, ev.PlaybackFinished, ev.TurnCompleted)
            # the first TTS request ends after `first_words` (3) words, the second at the sentence end
            assert c.kinds(*keep) == [
                "TurnDecided",
                "FinalTranscript",
                "AgentSpeech",
                "AgentSpeech",
                "PlaybackFinished",
                "TurnCompleted",
            ]
            assert c.kinds()[0] == "SpeechStarted" and "SpeechEnded" in c.kinds()
            assert c.of(ev.FinalTranscript)[0].text == "what is the capital of france"
            assert " ".join(e.text for e in c.of(ev.AgentSpeech)) == "Paris is the capital."

            rec = c.of(ev.TurnCompleted)[0].record
            assert rec == c.session.records[0].to_dict()
            assert rec["turn_id"] == 1 and not rec["interrupted"]
            assert rec["user_text"] == "what is the capital of france"
            assert rec["agent_text"] == "Paris is the capital."
            stages = ("endpoint_ms", "stt_final_ms", "llm_ttft_ms", "tts_first_audio_ms", "v2v_ms")
            assert all(rec[k] is not None for k in stages), rec
            # 16 silent frames of 32 ms decide the turn (within one 20 ms mic chunk)
            assert 500 <= rec["endpoint_ms"] <= 512 + 20
            assert rec["llm_ttft_ms"] == pytest.approx(50, abs=1)  # the fake's generation delay
            assert rec["tts_first_audio_ms"] == pytest.approx(30, abs=1)
            assert rec["v2v_ms"] >= rec["endpoint_ms"] + rec["stt_final_ms"]
            # speech ran from 0.3 s to 1.3 s of mic audio: the record holds the frame that ended it
            assert 1.3 <= rec["speech_end_s"] <= 1.3 + 0.032

            assert roles(c.session.history.messages) == [
                ("user", "what is the capital of france"),
                ("assistant", "Paris is the capital."),
            ]
            # the recogniser heard every frame holding the tone (0.3-1.3 s: frames 9-40 of 32 ms),
            # after the pre-roll's 9 silent frames
            heard = stt.streams[0].pushed.reshape(-1, 512)
            loud = np.sqrt(np.mean(heard**2, axis=1)) > 0.01
            assert loud.sum() == 32 and loud[9:41].all()
            # playback ends when the last sample has played: 4 words of 0.25 s after the first
            speech, done = c.of(ev.AgentSpeech)[0], c.of(ev.PlaybackFinished)[0]
            assert done.t - speech.t == pytest.approx(1.0, abs=1e-3)
            # the whole reply reached the speaker: 4 words of 0.25 s
            assert c.agent_audio_s == pytest.approx(1.0)
            assert tts.texts == ["Paris is the", "capital."]

    run_virtual(main())


def test_speculative_reply_is_the_one_spoken() -> None:
    """The reply starts at the pause (before the turn is decided) and, the words being the same,
    is played without asking the LLM again."""
    stt = FakeSTT(["hello there"])
    llm = FakeLLM(delay=0.05)

    async def main() -> None:
        async with conversation(make_providers(stt=stt, llm=llm)) as c:
            await c.turn(1.0)
            assert [call.user_text for call in llm.calls] == ["hello there"]
            assert llm.calls[0].finished and not llm.calls[0].closed_early
            marks = c.session.records[0].marks
            assert marks["llm_request"] < marks["decided"]
            assert stt.streams[0].log == ["paused", "pause_transcript", "finalize"]

    run_virtual(main())


def test_without_speculation_the_reply_starts_at_the_turn_end() -> None:
    stt = FakeSTT(["hello there"])
    llm = FakeLLM(delay=0.05)

    async def main() -> None:
        async with conversation(make_providers(stt=stt, llm=llm), config(speculate=False)) as c:
            await c.turn(1.0)
            assert len(llm.calls) == 1
            marks = c.session.records[0].marks
            assert marks["llm_request"] >= marks["decided"]
            assert "pause_transcript" not in stt.streams[0].log

    run_virtual(main())


def test_partials_are_reported_and_prefilled() -> None:
    stt = FakeSTT(["tell me a joke"], partial_every_s=0.25)
    llm = FakeLLM()

    async def main() -> None:
        async with conversation(make_providers(stt=stt, llm=llm)) as c:
            await c.turn(1.0)
            partials = c.of(ev.PartialTranscript)
            assert partials and all(p.text == "tell me a joke" for p in partials)
            assert c.kinds().index("PartialTranscript") < c.kinds().index("TurnDecided")
            assert llm.prefills, "partials were not prefilled"
            assert all(
                roles(m)[-1] == ("user", "tell me a joke") and m[0].role == "system" for m in llm.prefills
            )

    run_virtual(main())


def test_turn_without_words_is_dropped() -> None:
    stt = FakeSTT([""])  # speech heard, nothing recognised
    llm = FakeLLM()

    async def main() -> None:
        async with conversation(make_providers(stt=stt, llm=llm)) as c:
            await c.turn(1.0)
            assert c.kinds(ev.TurnDropped, ev.AgentSpeech, ev.TurnCompleted) == ["TurnDropped"]
            assert llm.calls == [] and c.session.history.messages == [] and c.sink.placed == []

    run_virtual(main())


def test_blip_shorter_than_min_speech_starts_no_turn() -> None:
    stt = FakeSTT(["never"])

    async def main() -> None:
        async with conversation(make_providers(stt=stt)) as c:
            await c.mic.silence(0.3)
            await c.mic.speak(0.1)  # 100 ms < min_speech_ms (160)
            await c.mic.silence(1.5)
            assert c.events == [] and stt.streams[0].audio == []

    run_virtual(main())


# -- several turns ---------------------------------------------------------------------------------
def test_two_turns_keep_history() -> None:
    stt = FakeSTT(["my name is ada", "what is my name"])
    llm = FakeLLM(
        {
            "my name is ada": ("Nice", " to", " meet", " you", ",", " Ada", "."),
            "what is my name": ("Your", " name", " is", " Ada", "."),
        }
    )

    async def main() -> None:
        async with conversation(make_providers(stt=stt, llm=llm)) as c:
            await c.turn(1.0)
            await c.turn(0.8, lead_s=0.5)
            assert [r.turn_id for r in c.session.records] == [1, 2]
            assert [r.user_text for r in c.session.records] == ["my name is ada", "what is my name"]
            history = [
                ("user", "my name is ada"),
                ("assistant", "Nice to meet you, Ada."),
                ("user", "what is my name"),
                ("assistant", "Your name is Ada."),
            ]
            assert roles(c.session.history.messages) == history
            second = [call for call in llm.calls if call.user_text == "what is my name"][-1]
            assert second.messages[0].role == "system"
            assert roles(second.messages[1:]) == history[:3]
            assert [e.turn_id for e in c.of(ev.PlaybackFinished)] == [1, 2]

    run_virtual(main())


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
            assert c.of(ev.Interrupted), c.kinds()
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


# -- pauses ----------------------------------------------------------------------------------------
def test_resume_after_pause_drops_the_speculative_reply() -> None:
    """'what is the' ... (300 ms) ... 'capital of france': no reply to the first words."""
    full = "what is the capital of france"
    stt = FakeSTT([full], pauses=["what is the"])
    llm = FakeLLM({"what is the": ("The", " what", "?"), full: ("Paris", ".")}, delay=0.1)

    async def main() -> None:
        async with conversation(make_providers(stt=stt, llm=llm)) as c:
            await c.mic.silence(0.3)
            await c.mic.speak(0.6)
            await c.mic.silence(0.3)  # a pause (128 ms) but not a turn end (500 ms)
            assert not c.of(ev.TurnDecided)
            assert [call.user_text for call in llm.calls] == ["what is the"]
            await c.mic.speak(0.6)
            assert await c.mic.silence_until(c.completed(1), 10)
            await c.mic.silence(0.5)

            first = llm.calls[0]
            assert first.closed_early and not first.finished
            assert [call.user_text for call in llm.calls if call.finished] == [full]
            assert stt.streams[0].log.count("resumed") == 1
            assert c.kinds(ev.TurnDecided, ev.FinalTranscript, ev.AgentSpeech, ev.TurnCompleted) == [
                "TurnDecided",
                "FinalTranscript",
                "AgentSpeech",
                "TurnCompleted",
            ]
            assert [e.text for e in c.of(ev.AgentSpeech)] == ["Paris."]
            assert c.agent_audio_s == pytest.approx(0.25)  # one word, once: nothing of "The what?"
            assert roles(c.session.history.messages) == [("user", full), ("assistant", "Paris.")]

    run_virtual(main())


def test_reply_to_the_final_words_when_they_differ_from_the_pause_words() -> None:
    stt = FakeSTT(["what is the capital of france"], pauses=["what is the capital"])
    llm = FakeLLM(
        {"what is the capital": ("Of", " what", "?"), "what is the capital of france": ("Paris", ".")}
    )

    async def main() -> None:
        async with conversation(make_providers(stt=stt, llm=llm)) as c:
            await c.turn(1.0)
            assert [call.user_text for call in llm.calls] == [
                "what is the capital",
                "what is the capital of france",
            ]
            assert [e.text for e in c.of(ev.AgentSpeech)] == ["Paris."]
            assert c.agent_audio_s == pytest.approx(0.25)
            assert roles(c.session.history.messages) == [
                ("user", "what is the capital of france"),
                ("assistant", "Paris."),
            ]

    run_virtual(main())


def test_llm_ttft_measures_the_reply_that_was_spoken() -> None:
    stt = FakeSTT(["what is the capital of france"], pauses=["what is the capital"])
    llm = FakeLLM(delay=0.5)  # every piece, the first included, takes 500 ms

    async def main() -> None:
        async with conversation(make_providers(stt=stt, llm=llm)) as c:
            await c.turn(1.0)
            assert [(call.user_text, call.finished) for call in llm.calls] == [
                ("what is the capital", False),
                ("what is the capital of france", True),
            ]
            assert c.session.records[0].llm_ttft_ms == pytest.approx(500, abs=1)  # got 900

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


# -- failures --------------------------------------------------------------------------------------
def test_llm_failure_is_reported_and_the_next_turn_is_answered() -> None:
    stt = FakeSTT(["first question", "second question"])
    llm = FakeLLM({"first question": ProviderError("llm server down", retryable=True)}, delay=0.05)

    async def main() -> None:
        async with conversation(make_providers(stt=stt, llm=llm)) as c:
            await c.turn(1.0)
            errors = c.of(ev.ErrorOccurred)
            assert len(errors) == 1
            assert errors[0].code == "turn_failed" and errors[0].stage == "reply"
            assert "llm server down" in errors[0].message
            assert not c.of(ev.AgentSpeech) and not c.of(ev.PlaybackFinished)
            assert c.session.records[0].agent_text == ""

            await c.turn(1.0, lead_s=0.5)
            assert [e.turn_id for e in c.of(ev.PlaybackFinished)] == [2]
            assert len(c.of(ev.ErrorOccurred)) == 1
            # the unanswered question is kept, joined to the next one
            assert roles(c.session.history.messages) == [
                ("user", "first question second question"),
                ("assistant", "Sure, happy to help."),
            ]

    run_virtual(main())


def test_tts_failure_is_reported() -> None:
    class BrokenTTS(FakeTTS):
        async def synthesize(self, text: str):  # type: ignore[no-untyped-def]
            raise ProviderError("voice crashed")
            yield np.zeros(1, np.float32)  # pragma: no cover - makes this an async generator

    async def main() -> None:
        async with conversation(make_providers(stt=FakeSTT(["hi"]), tts=BrokenTTS())) as c:
            await c.turn(1.0)
            assert [e.message for e in c.of(ev.ErrorOccurred)] == ["voice crashed"]
            assert c.kinds(ev.TurnCompleted, ev.PlaybackFinished) == ["TurnCompleted"]

    run_virtual(main())


def test_a_broken_listener_does_not_break_the_conversation(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_: ev.Event) -> None:
        raise RuntimeError("listener bug")

    async def main() -> None:
        async with conversation(make_providers(stt=FakeSTT(["hi"]))) as c:
            c.session.subscribe(broken)
            await c.turn(1.0)
            assert c.of(ev.PlaybackFinished)

    with caplog.at_level("ERROR", logger="voxloop.session"):
        run_virtual(main())
    assert "event listener failed" in caplog.text


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
