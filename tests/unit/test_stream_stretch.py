"""Hearing a long turn's committed pieces again as one stretch (providers/stt/stream.py), over a
scripted decoder: which audio the stretch gets, when its steps run, and when its text stands in
for the pieces'."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from test_decoder_stream import RATE, AligningDecoder, _push

from conftest import run_virtual, silence, tone
from voxloop.providers.base import Samples, Transcript, Word
from voxloop.providers.stt.decoding import Decoding
from voxloop.providers.stt.stream import DecoderStream


class StretchingDecoder(AligningDecoder):
    """Also hears committed pieces again as one stretch: "S<tenths>", after `stretch_s` of
    (virtual) time; `stretch_text` replaces that label when set, None means "not now"."""

    def __init__(
        self, stretch_s: float | list[float] = 0.1, stretch_text: str | None = "", **config: float
    ) -> None:
        super().__init__(**config)
        self.stretch_s, self.stretch_text = stretch_s, stretch_text
        self.stretches: list[tuple[float, str]] = []
        self.steps: list[float] = []

    async def decode_stretch_async(
        self, audio: Samples, context: str, go: Callable[[], Awaitable[object]]
    ) -> Decoding | None:
        """In ten steps, each after `go()`; records when each step ran (virtual seconds)."""
        self.stretches.append((round(len(audio) / RATE, 1), context))
        took = (
            self.stretch_s if isinstance(self.stretch_s, float) else self.stretch_s[len(self.stretches) - 1]
        )
        loop = asyncio.get_running_loop()
        for _ in range(10):
            await go()
            self.steps.append(round(loop.time(), 2))
            await asyncio.sleep(took / 10)
        if self.stretch_text is None:
            return None
        text = self.stretch_text or f"S{round(len(audio) / RATE * 10)}"
        return Decoding(text, (Word(text, 0.1, len(audio) / RATE - 0.1, 0.9),))


async def _spoken(s: DecoderStream, seconds: float) -> None:
    """`seconds` of speech, then a 0.2 s pause, and the user goes on."""
    await _push(s, tone(seconds))
    s.speech_paused()
    await _push(s, silence(0.2))
    s.speech_resumed()


async def _two_pieces(s: DecoderStream, then_s: float = 0.5) -> Transcript:
    """5 s, a pause, 2 s more, the turn's end after `then_s` of silence."""
    await _spoken(s, 5.0)  # 5 s >= 4 s: committed, and heard again as a stretch in the background
    await _push(s, tone(2.0))
    s.speech_paused()
    await _push(s, silence(then_s))
    return await s.finalize()


def test_committed_pieces_heard_again_as_one_stretch_stand_in_for_them() -> None:
    async def main() -> tuple[Transcript, list[tuple[float, str]]]:
        dec = StretchingDecoder(commit_min_s=4.0)
        s = DecoderStream(dec)
        return await _two_pieces(s), dec.stretches

    final, stretches = run_virtual(main())
    assert stretches == [(5.0, "")]  # the committed audio, once
    assert final.text == "S50 F22"
    assert [(w.word, round(w.start, 2)) for w in final.words] == [("S50", 0.1), ("F22", 5.1)]


def test_the_turns_end_never_waits_for_the_stretch() -> None:
    async def main() -> tuple[Transcript, float]:
        dec = StretchingDecoder(stretch_s=60.0, commit_min_s=4.0)
        s = DecoderStream(dec)
        loop = asyncio.get_running_loop()
        final = await _two_pieces(s)
        t0 = loop.time()
        await s.finalize()  # the next turn (empty): the stretch was dropped with the last one
        return final, loop.time() - t0

    final, took = run_virtual(main())
    assert final.text == "F50 F22"  # the pieces as decoded one by one
    assert took < 1.0


def test_a_stretch_that_lost_words_or_was_not_heard_is_not_taken() -> None:
    async def main(text: str | None) -> str:
        dec = StretchingDecoder(stretch_text=text, commit_min_s=4.0)
        s = DecoderStream(dec)
        await _spoken(s, 5.0)
        await _spoken(s, 5.0)  # a second piece: the stretch is heard again, now 10.2 s
        await _push(s, tone(1.0))
        return (await s.finalize()).text

    assert run_virtual(main("heard again")) == "heard again F12"
    assert run_virtual(main("one")) == "F50 F52 F12"  # one word for the two pieces' two: words lost
    assert run_virtual(main(None)) == "F50 F52 F12"  # a busy machine: not heard again


def test_the_stretch_waits_while_the_user_pauses() -> None:
    """The stretch's steps run only while the user speaks: a pause leaves the cores to the pause
    decode and the reply."""

    async def main() -> tuple[str, list[float], float, float]:
        dec = StretchingDecoder(stretch_s=1.0, commit_min_s=4.0)
        s = DecoderStream(dec)
        loop = asyncio.get_running_loop()
        await _spoken(s, 5.0)  # committed: the stretch starts, 1 s of steps
        await _push(s, tone(0.3))
        s.speech_paused()
        paused_at = loop.time()
        await _push(s, silence(0.6))  # no step runs in here
        s.speech_resumed()
        resumed_at = loop.time()
        await _push(s, tone(1.0))
        return (await s.finalize()).text, dec.steps, paused_at, resumed_at

    text, steps, paused_at, resumed_at = run_virtual(main())
    assert len(steps) == 10 and text == "S50 F21"
    assert not [t for t in steps if paused_at + 0.1 < t < resumed_at]  # a step under way may end
    assert [t for t in steps if t >= resumed_at]  # and the rest ran once the user spoke again


def test_a_stretch_done_stands_while_a_longer_one_is_heard() -> None:
    async def main() -> tuple[str, list[tuple[float, str]]]:
        dec = StretchingDecoder(stretch_s=[0.1, 60.0], commit_min_s=4.0)
        s = DecoderStream(dec)
        await _spoken(s, 5.0)  # the first piece, heard again at once
        await _spoken(s, 5.0)  # both pieces: a stretch that does not end before the turn does
        await _push(s, tone(1.0))
        return (await s.finalize()).text, dec.stretches

    text, stretches = run_virtual(main())
    assert [n for n, _ in stretches] == [5.0, 10.2]
    assert text == "S50 F52 F12"


def test_a_stretch_done_in_a_pause_is_taken_once_the_user_goes_on() -> None:
    """Taken in the pause, the stretch would change the words the reply is begun on there."""

    async def main() -> tuple[str, str, int]:
        dec = StretchingDecoder(stretch_s=1.0, commit_min_s=4.0)
        s = DecoderStream(dec)
        await _spoken(s, 5.0)  # committed: ten steps of 0.1 s begin
        await _push(s, tone(0.9))
        s.speech_paused()  # the tenth step is under way, and ends in the pause
        await _push(s, silence(0.3))
        at_pause = await s.pause_transcript()
        assert at_pause is not None
        s.speech_resumed()
        await _push(s, tone(0.5))
        return at_pause.text, (await s.finalize()).text, len(dec.steps)

    at_pause, final, steps = run_virtual(main())
    assert steps == 10
    assert at_pause.startswith("F50 ") and final.startswith("S50 "), (at_pause, final)


def test_no_stretch_when_configured_off() -> None:
    async def main() -> tuple[str, list[tuple[float, str]]]:
        dec = StretchingDecoder(commit_min_s=4.0)
        dec.config.stretch = False  # --stt-no-stretch
        s = DecoderStream(dec)
        return (await _two_pieces(s)).text, dec.stretches

    assert run_virtual(main()) == ("F50 F22", [])


def test_one_stretch_at_a_time_and_the_next_takes_in_the_pieces_committed_meanwhile() -> None:
    async def main() -> tuple[str, list[float], int]:
        dec = StretchingDecoder(stretch_s=[5.0, 0.1], stretch_text="heard again", commit_min_s=3.0)
        s = DecoderStream(dec)
        await _spoken(s, 9.0)  # committed: a stretch of 5 s of steps begins
        await _spoken(s, 3.5)  # 3.7 s: committed while that stretch runs
        await _push(s, tone(2.5))  # the first stretch ends; the next hears both pieces
        s.speech_paused()
        await _push(s, silence(0.5))
        return (await s.finalize()).text, [n for n, _ in dec.stretches], len(dec.steps)

    text, stretches, steps = run_virtual(main())
    assert stretches == [9.0, 12.7]
    assert steps == 20  # the first was not dropped for the second: each ran all its steps
    assert text == "heard again F27"  # the second stretch stands in for both pieces
