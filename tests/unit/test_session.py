"""Whole conversations through VoiceSession with fake providers, in virtual time.

Audio is fed by a paced Mic (16 kHz, 20 ms chunks): a tone is speech, zeros are silence. With the
default TurnConfig and 32 ms VAD frames a turn is decided 16 silent frames (512 ms) after the
last speech frame.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import (
    config,
    conversation,
    make_providers,
    roles,
    run_virtual,
)
from fakes import FakeLLM, FakeSTT, FakeTTS
from voxloop.agent import events as ev
from voxloop.errors import ProviderError


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
            # playback counts as finished once the speaker has been idle for 250 ms after the
            # last sample: 4 words of 0.25 s after the first, plus the watchdog's idle time
            speech, done = c.of(ev.AgentSpeech)[0], c.of(ev.PlaybackFinished)[0]
            assert done.t - speech.t == pytest.approx(1.0 + 0.25, abs=1e-3)
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


def test_going_on_after_a_decided_turn_rehears_it_and_answers_both_as_one() -> None:
    """'tell me a story' ... (700 ms: the turn is decided) ... 'about a dragon' before any reply was
    heard: the recogniser hears the first words again with the rest (after the agent's voice held
    for the user's: the turn is already open), and the agent answers once."""
    first, whole = "tell me a story", "tell me a story about a dragon"
    stt = FakeSTT([first, whole, "ok"], rehears=True)
    llm = FakeLLM({first: ("Once", " upon", "."), whole: ("A", " dragon", "."), "ok": ("Ok", ".")}, delay=0.3)

    async def main() -> None:
        # decided at the end silence, ready or not (by default the turn waits for its reply, which
        # would keep this pause inside it: tests/unit/test_turn_end.py)
        async with conversation(make_providers(stt=stt, llm=llm), config(ready_wait_ms=0)) as c:
            await c.mic.silence(0.3)
            await c.mic.speak(0.8)
            await c.mic.silence(0.7)  # decided after 512 ms; no token of its reply yet
            assert len(c.of(ev.TurnDecided)) == 1 and not c.of(ev.AgentSpeech)
            await c.mic.speak(0.8)
            assert await c.mic.silence_until(c.completed(2), 10)  # the first turn given up, this answered
            finals = [(e.text, e.revises) for e in c.of(ev.FinalTranscript)]
            assert finals == [(first, False), (whole, True)]
            # the first reply never reached the user's ears: the voice held when they went on
            assert " ".join(e.text for e in c.of(ev.AgentSpeech) if e.turn_id == 2) == "A dragon."
            assert roles(c.session.history.messages) == [("user", whole), ("assistant", "A dragon.")]
            # the next turn is a new one, after the answer: no words of the last are heard again
            await c.turn(0.5, lead_s=1.6)
            assert roles(c.session.history.messages)[-2:] == [("user", "ok"), ("assistant", "Ok.")]

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
