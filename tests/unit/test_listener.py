"""The Listener alone, with the fake VAD and recogniser: frames in; probabilities, boundaries, hints,
partial and final transcripts out.

16 kHz audio, 32 ms VAD frames (512 samples): a tone is speech, zeros are silence. With the default
TurnConfig speech starts after 5 frames of it (160 ms), the recogniser hears of a pause after 4
silent frames (128 ms) and the turn ends after 16 (512 ms).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from conftest import run_virtual, silence, tone
from fakes import FakeSTT, FakeVAD
from voxloop.agent.endpoint import Boundary
from voxloop.agent.listener import Listener
from voxloop.audio.wav import write_wav
from voxloop.bench.corpus import Clip
from voxloop.bench.wer import streaming_text
from voxloop.config import AgentConfig, TurnConfig
from voxloop.errors import AudioFormatError, StageTimeout
from voxloop.providers.base import Samples, Transcript
from voxloop.transports.timeline import TimelineSink

F = 512  # samples per frame


def frames(n: int) -> float:
    """Seconds of `n` frames."""
    return n * F / 16000


def audio(*parts: tuple[str, int]) -> Samples:
    """("speech" | "silence", frames) in order."""
    return np.concatenate([tone(frames(n)) if kind == "speech" else silence(frames(n)) for kind, n in parts])


def turn_config(**turn: object) -> AgentConfig:
    return AgentConfig(turn=dataclasses.replace(TurnConfig(), **turn))


async def heard(ear: Listener, x: Samples) -> tuple[list[float], list[tuple[str, int]]]:
    """Feed `x` frame by frame as a consumer does, applying every boundary."""
    probs: list[float] = []
    seen: list[tuple[str, int]] = []
    for frame in ear.frames(x, 16000):
        probs.append(await ear.hear(frame))
        for b in ear.boundaries():
            seen.append((b.kind, b.sample))
            await ear.apply(b)
    return probs, seen


async def listened(ear: Listener, x: Samples) -> list[str]:
    """What `listen` yields: boundary kinds, and finals as "final: TEXT"."""
    return [
        f"final: {out.text}" if isinstance(out, Transcript) else out.kind
        async for out in ear.listen(x, 16000)
    ]


# -- frames, probabilities, boundaries -------------------------------------------------------------
def test_boundaries_come_at_sample_positions_and_every_frame_has_its_probability() -> None:
    async def main() -> None:
        ear = Listener(FakeVAD(), FakeSTT(["hello"]), AgentConfig())
        probs, seen = await heard(ear, audio(("silence", 16), ("speech", 16), ("silence", 32)))
        assert probs == [0.0] * 16 + [1.0] * 16 + [0.0] * 32
        # the onset is the first speech frame; pause and turn end point at the last speech sample
        assert seen == [("speech_start", 16 * F), ("pause", 32 * F), ("turn_end", 32 * F)]
        assert ear.onset == 16 * F and ear.position == 64 * F and not ear.in_turn

    run_virtual(main())


def test_the_pre_roll_and_the_turn_reach_the_recogniser_and_nothing_else() -> None:
    async def main() -> None:
        stt = FakeSTT(["hello"])
        ear = Listener(FakeVAD(), stt, AgentConfig())
        x = audio(("silence", 16), ("speech", 16), ("silence", 32))
        await heard(ear, x)
        # speech starts on frame 20 (its 5th); the pre-roll holds the 17 frames up to it
        # (320 ms + 160 ms + 2 frames); the turn ends on frame 47 (the 16th silent one)
        assert np.array_equal(stt.streams[0].pushed, x[4 * F : 48 * F])
        assert (await ear.final()).text == "hello"

    run_virtual(main())


def test_pause_and_resume_reach_the_recogniser_as_hints() -> None:
    async def main() -> None:
        stt = FakeSTT(["what is the capital"])
        ear = Listener(FakeVAD(), stt, AgentConfig())
        x = audio(("silence", 16), ("speech", 16), ("silence", 8), ("speech", 16), ("silence", 20))
        _, seen = await heard(ear, x)
        assert [k for k, _ in seen] == ["speech_start", "pause", "resume", "pause", "turn_end"]
        assert seen[2] == ("resume", 41 * F)  # the frame that resumed it: 32 + 8 + 1 frames
        assert stt.streams[0].log == ["paused", "resumed", "paused"]
        await ear.final()
        assert stt.streams[0].log[-1] == "finalize"

    run_virtual(main())


def test_audio_is_checked_resampled_and_framed_whatever_its_blocks() -> None:
    async def main() -> None:
        ear = Listener(FakeVAD(), FakeSTT(), AgentConfig())
        for bad, rate in [(np.zeros(320, np.float32), 4000), (np.array([0.0, np.nan], np.float32), 16000)]:
            with pytest.raises(AudioFormatError):
                ear.frames(bad, rate)
        assert ear.frames(np.zeros(700, np.float32), 16000) != []  # one frame; 188 samples wait
        assert len(ear.frames(np.zeros(324, np.float32), 16000)) == 1  # ... for these
        x = tone(1.0, 48000)
        got = [f for i in range(0, len(x), 960) for f in ear.frames(x[i : i + 960], 48000)]
        assert all(len(f) == F for f in got) and 29 <= len(got) <= 31  # 1 s at 16 kHz

    run_virtual(main())


# -- finals ----------------------------------------------------------------------------------------
def test_listen_yields_each_boundary_and_each_turns_final_transcript() -> None:
    async def main() -> None:
        ear = Listener(FakeVAD(), FakeSTT(["one", "two"]), AgentConfig())
        x = audio(("silence", 10), ("speech", 10), ("silence", 60), ("speech", 10), ("silence", 20))
        assert await listened(ear, x) == [
            *("speech_start", "pause", "turn_end", "final: one"),
            *("speech_start", "pause", "turn_end", "final: two"),
        ]

    run_virtual(main())


def test_where_the_audio_ends_the_turn_under_way_ends_unless_more_is_to_come() -> None:
    async def main() -> None:
        ear = Listener(FakeVAD(), FakeSTT(["cut short"]), AgentConfig())
        x = audio(("silence", 10), ("speech", 10))
        assert await listened(ear, x) == ["speech_start", "pause", "turn_end", "final: cut short"]
        ear = Listener(FakeVAD(), FakeSTT(["goes on"]), AgentConfig())
        assert [out async for out in ear.listen(x, 16000, end=False)] == [Boundary("speech_start", 10 * F)]
        assert ear.in_turn

    run_virtual(main())


def test_a_recogniser_that_gives_no_final_transcript_in_time_is_a_stage_timeout() -> None:
    async def main() -> None:
        ear = Listener(FakeVAD(), FakeSTT(["late"], finalize_delay=60.0), turn_config(stage_timeout_s=2.0))
        await heard(ear, audio(("silence", 10), ("speech", 10), ("silence", 20)))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(StageTimeout) as e:
            await ear.final()
        assert e.value.stage == "recogniser" and loop.time() - t0 == pytest.approx(2.0)

    run_virtual(main())


def test_partials_are_passed_on_only_while_a_turn_is_open() -> None:
    async def main() -> None:
        stt = FakeSTT(["hello there"], partial_every_s=0.1)
        partials: list[str] = []
        ear = Listener(FakeVAD(), stt, AgentConfig(), on_partial=lambda tr: partials.append(tr.text))
        await heard(ear, audio(("silence", 10), ("speech", 20), ("silence", 20)))
        assert partials and set(partials) == {"hello there"}
        n = len(partials)
        on_partial = stt.streams[0].on_partial
        assert on_partial is not None
        on_partial(Transcript("a decode that landed after the turn", False))
        assert len(partials) == n
        # with nobody to hear them, the recogniser is not asked for partials at all
        quiet = FakeSTT()
        Listener(FakeVAD(), quiet, AgentConfig())
        assert quiet.streams[0].on_partial is None

    run_virtual(main())


# -- what a consumer with an agent decides ---------------------------------------------------------
def test_a_dropped_turn_is_forgotten() -> None:
    async def main() -> None:
        stt = FakeSTT(["uh-huh", "a real question"])
        ear = Listener(FakeVAD(), stt, AgentConfig())
        _, seen = await heard(ear, audio(("silence", 10), ("speech", 10), ("silence", 8)))
        assert [k for k, _ in seen] == ["speech_start", "pause"]
        assert await ear.drop() == 20 * F  # where its speech ended
        assert not ear.in_turn and stt.streams[0].log[-1] == "finalize"  # the recogniser is empty
        assert list(stt.finals) == ["a real question"]
        assert await ear.drop() is None  # nothing open
        # no turn was decided: the next speech does not go on from it
        out = await listened(ear, audio(("speech", 10), ("silence", 20)))
        assert out == ["speech_start", "pause", "turn_end", "final: a real question"]
        assert not any(x.startswith("continues") for x in stt.streams[0].log)
        assert ear.end_silence_ms == 500

    run_virtual(main())


def test_a_skipped_speech_start_opens_no_turn() -> None:
    async def main() -> None:
        stt = FakeSTT(["never"])
        ear = Listener(FakeVAD(), stt, AgentConfig())
        starts = []
        for frame in ear.frames(audio(("silence", 10), ("speech", 12)), 16000):
            await ear.hear(frame)
            for b in ear.boundaries():
                assert b.kind == "speech_start"
                starts.append(b.sample)
                ear.skip()  # half duplex: the agent is speaking
        # the endpointer starts over each time: another 5 frames of speech start it again
        assert starts == [10 * F, 15 * F] and not ear.in_turn
        assert stt.streams[0].audio == [] and stt.streams[0].log == []

    run_virtual(main())


def test_an_unfinished_pause_waits_longer() -> None:
    async def main() -> None:
        # 1100 ms of silence is 34.4 frames: decided on the 35th; 500 ms on the 16th
        for words, decided_on in (("tell me about,", 35), ("tell me a joke.", 16)):
            ear = Listener(FakeVAD(), FakeSTT([words]), AgentConfig())
            _, seen = await heard(ear, audio(("silence", 10), ("speech", 10), ("silence", 4)))
            assert seen[-1] == ("pause", 20 * F)
            ear.hold_if_unfinished(words)  # what a pause transcript said
            n = 4
            while not seen or seen[-1][0] != "turn_end":
                assert n < 60, "the turn never ended"
                _, seen = await heard(ear, audio(("silence", 1)))
                n += 1
            assert (n, seen) == (decided_on, [("turn_end", 20 * F)])

    run_virtual(main())


# -- going on after a decided turn ------------------------------------------------------------------
def test_speech_soon_after_a_decided_turn_goes_on_from_it() -> None:
    async def main() -> None:
        stt = FakeSTT(["tell me a story", "about a dragon", "who could fly"])
        ear = Listener(FakeVAD(), stt, AgentConfig())
        x = audio(
            *(("silence", 10), ("speech", 10)),
            ("silence", 22),  # 704 ms: the turn ends after 512, and the user goes on
            ("speech", 10),
            ("silence", 22),  # the same pause: now it does not end their turn
            *(("speech", 10), ("silence", 30)),
        )
        out = await listened(ear, x)
        assert [o for o in out if o.startswith("final")] == [
            "final: tell me a story",
            "final: about a dragon",
        ]
        assert [x for x in stt.streams[0].log if x.startswith("continues")] == ["continues: tell me a story"]
        assert ear.end_silence_ms == pytest.approx(704 + 150)

    run_virtual(main())


def test_a_turn_gone_on_into_hears_the_last_one_again_with_the_pause_between() -> None:
    async def main() -> None:
        stt = FakeSTT(["tell me a story", "tell me a story about a dragon"], rehears=True)
        ear = Listener(FakeVAD(), stt, AgentConfig(), rehear=True)
        x = audio(("silence", 10), ("speech", 10), ("silence", 22), ("speech", 10), ("silence", 30))
        out: list[Transcript] = []
        async for o in ear.listen(x, 16000):
            if isinstance(o, Transcript):
                out.append(o)
                if len(out) == 1:
                    first_turn_start = ear.turn_start
            elif o.kind == "speech_start" and out:
                second_onset = ear.onset
        assert [(t.text, t.revises) for t in out] == [
            ("tell me a story", ""),
            ("tell me a story about a dragon", "tell me a story"),
        ]
        s = stt.streams[0]
        assert [x for x in s.log if x.startswith(("rehear", "continues"))] == ["rehear: tell me a story"]
        # the second turn's audio is the first's, then every frame after it up to its own end: one
        # unbroken stretch of the input, from where the first turn's audio began
        second = s.last_turn
        assert len(second) > second_onset - first_turn_start
        assert np.array_equal(second, x[first_turn_start : first_turn_start + len(second)])
        assert ear.turn_start == first_turn_start  # its words are timed from there

    run_virtual(main())


def test_without_rehear_a_turn_gone_on_into_gets_the_last_ones_words_as_context() -> None:
    async def main() -> None:
        stt = FakeSTT(["tell me a story", "about a dragon"], rehears=True)
        ear = Listener(FakeVAD(), stt, AgentConfig())  # a client that cannot take a final back
        x = audio(("silence", 10), ("speech", 10), ("silence", 22), ("speech", 10), ("silence", 30))
        out = [o for o in await listened(ear, x) if o.startswith("final")]
        assert out == ["final: tell me a story", "final: about a dragon"]
        s = stt.streams[0]
        assert [x for x in s.log if x.startswith(("rehear", "continues"))] == ["continues: tell me a story"]

    run_virtual(main())


def test_speech_long_after_a_decided_turn_is_a_new_one() -> None:
    async def main() -> None:
        stt = FakeSTT(["good morning", "what time is it"])
        ear = Listener(FakeVAD(), stt, AgentConfig())
        x = audio(("silence", 10), ("speech", 10), ("silence", 50), ("speech", 10), ("silence", 20))
        out = await listened(ear, x)  # 1.6 s apart: longer than max_end_silence_ms
        assert [o for o in out if o.startswith("final")] == ["final: good morning", "final: what time is it"]
        assert not any(x.startswith("continues") for x in stt.streams[0].log)
        assert ear.end_silence_ms == 500

    run_virtual(main())


def test_going_on_before_the_turns_words_are_known_gives_no_context() -> None:
    async def main() -> None:
        stt = FakeSTT(["first", "second"])
        ear = Listener(FakeVAD(), stt, AgentConfig())
        await heard(ear, audio(("silence", 10), ("speech", 10), ("silence", 20), ("speech", 6)))
        ear.went_on()  # the turn was decided; its final transcript was never asked for
        assert not any(x.startswith("continues") for x in stt.streams[0].log)
        assert ear.end_silence_ms == pytest.approx(20 * 32 + 150)  # the pause still counts
        ear.relax()  # the agent answered the next turn: halfway back
        assert ear.end_silence_ms == pytest.approx((790 + 500) / 2)

    run_virtual(main())


# -- echo guard ------------------------------------------------------------------------------------
def test_the_echo_guard_needs_a_speaker_that_reports_what_it_played() -> None:
    assert Listener(FakeVAD(), FakeSTT(), AgentConfig(), speaker=TimelineSink(24000)).echo is not None
    assert Listener(FakeVAD(), FakeSTT(), AgentConfig()).echo is None
    off = turn_config(echo_cancel=False)
    assert Listener(FakeVAD(), FakeSTT(), off, speaker=TimelineSink(24000)).echo is None


# -- bench wer -------------------------------------------------------------------------------------
def test_bench_wer_streams_each_clip_through_the_listener(tmp_path: Path) -> None:
    x = audio(("speech", 20), ("silence", 60), ("speech", 20), ("silence", 60), ("speech", 20))
    clip = Clip("c1", write_wav(tmp_path / "c1.wav", x, 16000), "one two")
    stt = FakeSTT(["One.", "", "two"])
    text = run_virtual(streaming_text(FakeVAD(), stt, AgentConfig(), clip))
    assert text == "One. two"  # the empty turn ("") leaves no gap
    assert stt.streams[0].closed
