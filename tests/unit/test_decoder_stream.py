"""The piece-by-piece streaming recogniser (providers/stt/stream.py) over a scripted decoder:
which audio each decode gets, which decodes become final, and that no stretch of the turn is
left out of the final transcript."""

from __future__ import annotations

import asyncio

import numpy as np

from conftest import run_virtual, silence, tone
from voxloop.config import STTConfig
from voxloop.providers.base import Samples, Transcript, Word
from voxloop.providers.stt.decoding import Decoding
from voxloop.providers.stt.stream import DecoderStream, heard_again

RATE = 16000


class ScriptedDecoder:
    """Answers each decode with a label of the audio it got: its length in tenths of a second
    and whether it was a final decode, e.g. "F40" for a 4.0 s final decode; records every call."""

    sample_rate = RATE

    def __init__(self, **config: float) -> None:
        self.config = STTConfig(**{"partial_interval_s": 0.4, **config})  # type: ignore[arg-type]
        self.calls: list[tuple[int, bool, str]] = []  # (samples, final, context)

    async def decode_async(self, audio: Samples, final: bool = False, context: str = "") -> str:
        self.calls.append((len(audio), final, context))
        await asyncio.sleep(0.05)  # virtual time: a decode takes a moment
        return f"{'F' if final else 'P'}{round(len(audio) / RATE * 10)}"

    def finals(self) -> list[tuple[float, str]]:
        return [(round(n / RATE, 1), ctx) for n, final, ctx in self.calls if final]


async def _push(stream: DecoderStream, audio: Samples, step_s: float = 0.032) -> None:
    n = int(step_s * RATE)
    for i in range(0, len(audio), n):
        await stream.push(audio[i : i + n])
        await asyncio.sleep(step_s)


def test_a_pause_after_a_long_stretch_makes_its_decode_final_and_starts_a_new_piece() -> None:
    async def main() -> tuple[Transcript, list[tuple[float, str]]]:
        dec = ScriptedDecoder(commit_min_s=4.0)
        s = DecoderStream(dec)
        await _push(s, tone(5.0))
        s.speech_paused()
        await _push(s, silence(0.2))
        s.speech_resumed()  # 5 s >= 4 s: the pause decode is the first piece's text
        await _push(s, tone(2.0))
        s.speech_paused()
        await _push(s, silence(0.5))
        return await s.finalize(), dec.finals()

    final, finals = run_virtual(main())
    assert final.text == "F50 F22"  # both pieces, in order, nothing decoded twice
    assert finals == [(5.0, ""), (2.2, "F50")]  # the second piece hears the first as context
    assert final.audio_s == 7.2
    assert final.words == ()  # a decoder that gives no word times (Moonshine): none


class AligningDecoder(ScriptedDecoder):
    """Also tells where its final decodes' words are: one word, from 0.1 s into its audio to 0.1 s
    before its end, confidence 0.8; records which final decodes were a long turn's later pieces."""

    def __init__(self, **config: float) -> None:
        super().__init__(**config)
        self.later: list[tuple[float, bool]] = []  # (seconds decoded, later)

    async def decode_timed_async(self, audio: Samples, context: str = "", later: bool = False) -> Decoding:
        self.later.append((round(len(audio) / RATE, 1), later))
        text = await self.decode_async(audio, True, context)
        return Decoding(text, (Word(text, 0.1, len(audio) / RATE - 0.1, 0.8),))


def test_final_and_pause_words_are_timed_from_the_start_of_the_turns_audio() -> None:
    async def main() -> tuple[Transcript | None, Transcript, Transcript]:
        dec = AligningDecoder(commit_min_s=4.0)
        s = DecoderStream(dec)
        await _push(s, tone(5.0))
        s.speech_paused()
        await _push(s, silence(0.2))
        s.speech_resumed()  # the first piece: 0-5 s
        await _push(s, tone(2.0))
        s.speech_paused()  # the second: 5-7.2 s
        paused = await s.pause_transcript()
        await _push(s, silence(0.5))
        final = await s.finalize()
        await _push(s, tone(1.0))  # the next turn's words are timed from its own start
        return paused, final, await s.finalize()

    paused, final, nxt = run_virtual(main())
    assert paused is not None and paused.words == final.words
    assert [(w.word, round(w.start, 3), round(w.end, 3), w.confidence) for w in final.words] == [
        ("F50", 0.1, 4.9, 0.8),
        ("F22", 5.1, 7.1, 0.8),
    ]
    assert [(round(w.start, 3), round(w.end, 3)) for w in nxt.words] == [(0.1, 0.9)]


def test_only_the_pieces_after_a_committed_one_are_decoded_as_a_long_turns_later_pieces() -> None:
    async def main() -> list[tuple[float, bool]]:
        dec = AligningDecoder(commit_min_s=4.0)
        s = DecoderStream(dec)
        await _push(s, tone(2.0))
        s.speech_paused()  # 2 s: too short to commit
        await _push(s, silence(0.2))
        s.speech_resumed()
        await _push(s, tone(3.0))
        s.speech_paused()  # 5.2 s: committed when the user goes on
        await _push(s, silence(0.2))
        s.speech_resumed()
        await _push(s, tone(2.0))
        s.speech_paused()  # the last piece: a later one
        await _push(s, silence(0.5))
        await s.finalize()
        await _push(s, tone(1.0))  # the next turn starts over: not a later piece
        s.speech_paused()
        await _push(s, silence(0.5))
        await s.finalize()
        return dec.later

    assert run_virtual(main()) == [(2.0, False), (5.2, False), (2.2, True), (1.0, False)]


def test_a_short_stretch_is_not_final_on_its_own_and_is_decoded_again_with_what_follows() -> None:
    async def main() -> str:
        dec = ScriptedDecoder(commit_min_s=4.0)
        s = DecoderStream(dec)
        await _push(s, tone(1.0))
        s.speech_paused()
        await _push(s, silence(0.2))
        s.speech_resumed()  # 1.2 s: too short to stand alone
        await _push(s, tone(1.0))
        return (await s.finalize()).text

    assert run_virtual(main()) == "F22"  # one decode of the whole turn


def test_speech_with_no_pause_is_cut_at_its_quietest_moment() -> None:
    async def main() -> tuple[str, list[tuple[float, str]]]:
        dec = ScriptedDecoder(max_piece_s=6.0)
        s = DecoderStream(dec)
        # 4.5 s of sound, a 0.1 s dip, 4 s more: no pause the VAD would report
        await _push(s, np.concatenate([tone(4.5), silence(0.1), tone(4.0)]))
        return (await s.finalize()).text, dec.finals()

    text, finals = run_virtual(main())
    cut = finals[0][0]
    assert 4.4 <= cut <= 4.7  # in the dip
    assert round(sum(f for f, _ in finals), 1) == 8.6  # every sample decoded, once
    assert len(text.split()) == 2


def test_partials_cover_the_committed_words_and_only_re_decode_the_open_piece() -> None:
    async def main() -> tuple[list[str], list[int]]:
        dec = ScriptedDecoder(commit_min_s=2.0)
        partials: list[str] = []
        s = DecoderStream(dec, lambda t: partials.append(t.text))
        await _push(s, tone(3.0))
        s.speech_paused()
        await _push(s, silence(0.2))
        s.speech_resumed()
        await _push(s, tone(1.5))
        await s.aclose()
        return partials, [n for n, final, _ in dec.calls if not final]

    partials, partial_sizes = run_virtual(main())
    assert partials[-1].startswith("F30 P")  # the committed piece's words, then the open piece's
    assert max(partial_sizes[-2:]) < 2.0 * RATE  # the open piece only, not the whole turn


def test_pause_transcript_is_none_once_the_user_goes_on() -> None:
    async def main() -> tuple[Transcript | None, Transcript | None]:
        dec = ScriptedDecoder(commit_min_s=4.0)
        s = DecoderStream(dec)
        await _push(s, tone(1.0))
        s.speech_paused()
        first = await s.pause_transcript()
        s.speech_resumed()
        return first, await s.pause_transcript()

    first, after = run_virtual(main())
    assert first is not None and first.text == "F10"
    assert after is None


def test_audio_pushed_while_finalizing_belongs_to_the_next_turn() -> None:
    async def main() -> tuple[str, str]:
        dec = ScriptedDecoder()
        s = DecoderStream(dec)
        await _push(s, tone(1.0))
        fin = asyncio.get_running_loop().create_task(s.finalize())
        await asyncio.sleep(0)
        await s.push(tone(0.5))  # the next turn's first words, while the final decode runs
        first = (await fin).text
        return first, (await s.finalize()).text

    assert run_virtual(main()) == ("F10", "F5")


def test_continues_gives_the_words_before_the_turn_as_context() -> None:
    async def main() -> list[tuple[float, str]]:
        dec = ScriptedDecoder()
        s = DecoderStream(dec)
        s.continues("and then we went")
        await _push(s, tone(1.0))
        await s.finalize()
        s2 = (await s.finalize()).text  # the context was for that turn only
        assert s2 == ""
        return dec.finals()

    assert run_virtual(main()) == [(1.0, "and then we went")]


def test_a_dropped_pause_decode_still_queued_never_runs_and_its_waiter_gets_none() -> None:
    class OneAtATime(ScriptedDecoder):
        """Decodes one after another, like a provider's single worker thread."""

        def __init__(self, **config: float) -> None:
            super().__init__(**config)
            self.lock = asyncio.Lock()

        async def decode_async(self, audio: Samples, final: bool = False, context: str = "") -> str:
            async with self.lock:
                return await super().decode_async(audio, final, context)

    async def main() -> tuple[Transcript | None, str, int]:
        dec = OneAtATime(commit_min_s=4.0)
        s = DecoderStream(dec)
        await _push(s, tone(1.0))
        s.speech_paused()
        s.speech_resumed()  # at once: its decode is still waiting for the decoder
        await _push(s, tone(0.5))
        s.speech_paused()
        waiter = asyncio.get_running_loop().create_task(s.pause_transcript())
        await asyncio.sleep(0)
        s.speech_resumed()  # dropped while someone waits for it
        await _push(s, tone(0.5))
        dropped = await waiter
        text = (await s.finalize()).text
        return dropped, text, len([c for c in dec.calls if c[1]])

    dropped, text, finals = run_virtual(main())
    assert dropped is None
    assert text == "F20"
    assert finals == 2  # the first dropped decode never ran; the second had started, then the final one


def test_a_turn_too_short_for_a_partial_hears_its_pause_decode_as_one() -> None:
    async def main(speech_s: float) -> tuple[list[Transcript], Transcript]:
        dec = ScriptedDecoder(partial_interval_s=5.0)  # no partial can land in this turn
        partials: list[Transcript] = []
        s = DecoderStream(dec, partials.append)
        await _push(s, tone(speech_s))
        s.speech_paused()
        await _push(s, silence(0.5))
        final = await s.finalize()
        await s.aclose()
        return partials, final

    partials, final = run_virtual(main(1.0))
    assert [(p.text, p.is_final) for p in partials] == [("F10", False)]  # interim, before the final
    assert final.text == "F10"


def test_a_turn_with_partials_gets_no_extra_one_at_its_pause() -> None:
    async def main() -> list[str]:
        dec = ScriptedDecoder()
        partials: list[str] = []
        s = DecoderStream(dec, lambda t: partials.append(t.text))
        await _push(s, tone(1.5))
        s.speech_paused()
        await _push(s, silence(0.5))
        await s.finalize()
        await s.aclose()
        return partials

    partials = run_virtual(main())
    assert partials and all(p.startswith("P") for p in partials)


class SlowDecoder(ScriptedDecoder):
    """Partials take 0.3 s, final decodes 1.0 s (a busy machine)."""

    async def decode_async(self, audio: Samples, final: bool = False, context: str = "") -> str:
        await asyncio.sleep(0.95 if final else 0.25)
        return await super().decode_async(audio, final, context)


def test_on_a_busy_machine_a_late_partial_is_heard_while_the_pause_decode_runs() -> None:
    async def main() -> tuple[list[str], str]:
        dec = SlowDecoder()
        partials: list[str] = []
        s = DecoderStream(dec, lambda t: partials.append(t.text))
        await _push(s, tone(0.5))  # a partial starts at 0.4 s and lands in the pause
        s.speech_paused()
        await _push(s, silence(1.5))
        final = await s.finalize()
        await s.aclose()
        return partials, final.text

    partials, final = run_virtual(main())
    assert partials == ["P4"]  # the turn's only partial, though it landed in the pause
    assert final == "F5"


class WordingDecoder(AligningDecoder):
    """Says given words for audio of given lengths (tenths of a second), else its label."""

    def __init__(self, words: dict[int, str], **config: float) -> None:
        super().__init__(**config)
        self.words = words

    async def decode_async(self, audio: Samples, final: bool = False, context: str = "") -> str:
        label = await super().decode_async(audio, final, context)
        return self.words.get(round(len(audio) / RATE * 10), label)


async def _two_turns(dec: ScriptedDecoder) -> tuple[Transcript, int, Transcript]:
    """A turn of a 5 s piece, a pause, 2 s more and its end; then the user goes on after 0.3 s
    with 1 s of speech, and this turn hears the last one again."""
    s = DecoderStream(dec)
    await _push(s, tone(5.0))
    s.speech_paused()
    await _push(s, silence(0.2))
    s.speech_resumed()  # a first piece of 5 s, committed
    await _push(s, tone(2.0))
    s.speech_paused()
    await _push(s, silence(0.5))
    first = await s.finalize()  # the turn was decided
    # ... but the user went on: its last piece (2.7 s pushed) again, then the 0.3 s between
    taken = s.rehear(first.text, silence(0.3))
    await _push(s, tone(1.0))
    s.speech_paused()
    await _push(s, silence(0.5))
    return first, taken, await s.finalize()


def test_a_turn_that_goes_on_from_the_last_hears_its_last_piece_again_and_revises_its_words() -> None:
    dec = WordingDecoder({22: "tell me a story", 40: "tell me a story about a dragon"}, commit_min_s=4.0)
    first, taken, second = run_virtual(_two_turns(dec))
    assert first.text == "F50 tell me a story" and first.revises == ""
    assert taken == int(3.0 * RATE)  # from the first pause (the second piece's start) to the turn's end
    # the second piece is decoded again with the new speech (2.7 + 0.3 + 1.0 s, up to the pause), after
    # the first piece's words as context, and the new transcript holds both turns' words
    assert dec.finals()[-1] == (4.0, "F50")
    assert second.text == "F50 tell me a story about a dragon" and second.revises == first.text


def test_a_second_hearing_that_lost_the_words_of_the_first_keeps_the_first() -> None:
    # Whisper skipped the words before the pause: "about a dragon" alone
    dec = WordingDecoder({22: "tell me a story", 40: "about a dragon"}, commit_min_s=4.0)
    first, taken, second = run_virtual(_two_turns(dec))
    # the first hearing's words stay, and what followed them (1.3 s) is decoded after them
    assert dec.finals()[-1] == (1.3, "F50 tell me a story")
    assert second.text == "F50 tell me a story F13" and second.revises == first.text
    assert second.words == ()  # "F50" was not heard again: it has no time on this turn's clock


def test_a_second_hearing_is_kept_when_it_has_most_of_the_first_ones_words() -> None:
    assert heard_again("tell me a story", "tell me the story about a dragon")
    assert heard_again("Answered he.", "answered he, the same that thou seekest")
    assert heard_again("Reply sheet.", "replied he, of a truth I heard")  # the same sounds
    assert not heard_again("answered he.", "The same that thou seekest")
    assert not heard_again("tell me a story", "about a big red dragon and then tell me")  # not near its start
    assert heard_again("", "anything")


def test_only_the_turn_the_stream_heard_last_is_heard_again_and_only_once() -> None:
    async def main() -> tuple[int, int, int, int]:
        dec = AligningDecoder(commit_min_s=4.0)
        s = DecoderStream(dec)
        assert s.rehear("anything", silence(0.1)) == 0  # no turn yet
        await _push(s, tone(1.0))
        first = await s.finalize()
        other = s.rehear("words of another turn", silence(0.1))  # a dropped sound came between
        await _push(s, tone(5.0))
        s.speech_paused()
        await _push(s, silence(0.2))
        s.speech_resumed()  # a piece of this turn is final: too late to put the last turn first
        late = s.rehear(first.text, silence(0.1))
        await _push(s, tone(1.0))
        second = await s.finalize()
        once = s.rehear(second.text, silence(0.1))
        twice = s.rehear(second.text, silence(0.1))
        return other, late, once, twice

    other, late, once, twice = run_virtual(main())
    assert (other, late, twice) == (0, 0, 0)
    assert once == int(1.3 * RATE)  # only the open piece (from the pause on), then the gap


def test_a_decoder_that_gives_no_word_times_never_hears_a_turn_again() -> None:
    async def main() -> int:
        s = DecoderStream(ScriptedDecoder())
        await _push(s, tone(1.0))
        first = await s.finalize()
        return s.rehear(first.text, silence(0.1))

    assert run_virtual(main()) == 0  # without times, words it skipped could not be put back


def test_a_turn_that_hears_the_last_again_takes_no_other_context_for_it() -> None:
    """The listener may say twice that the user went on (the agent's paused voice was judged, then
    the turn taken): the second time, with the last turn already heard again, its words must not
    come before the transcript a second time."""

    async def main() -> tuple[Transcript, Transcript]:
        dec = WordingDecoder({22: "tell me a story", 40: "tell me a story about a dragon"}, commit_min_s=4.0)
        s = DecoderStream(dec)
        await _push(s, tone(5.0))
        s.speech_paused()
        await _push(s, silence(0.2))
        s.speech_resumed()
        await _push(s, tone(2.0))
        s.speech_paused()
        await _push(s, silence(0.5))
        first = await s.finalize()
        assert s.rehear(first.text, silence(0.3)) > 0
        s.continues(first.text)  # said again: it is already being heard again
        await _push(s, tone(1.0))
        s.speech_paused()
        await _push(s, silence(0.5))
        return first, await s.finalize()

    first, second = run_virtual(main())
    assert second.text == "F50 tell me a story about a dragon" and second.revises == first.text
