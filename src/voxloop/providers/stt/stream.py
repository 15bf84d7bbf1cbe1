"""A streaming recogniser made from a decoder of whole pieces of audio (Whisper, Moonshine).

A turn is heard as a row of pieces, each ending where the speaker paused:

- While the user speaks, the open piece (everything since the last committed one) is re-decoded
  every `partial_interval_s` for partial transcripts (greedy: they are hints).
- When the VAD hears a pause (`speech_paused`), the open piece is decoded at once, on the
  decoder's critical-path worker with the final beam. If the turn ends there, that decode is the
  last piece of the final transcript, usually ready before the turn is decided.
- When the speech goes on (`speech_resumed`) and the open piece is at least `commit_min_s` long,
  that pause decode is kept as the piece's final text and a new piece starts at the pause. So no
  decode is ever longer than one stretch of speech between pauses: a long turn costs no more at
  its end than a short one, and no window is ever asked to hold more than it can.
- Speech that goes on for `max_piece_s` without a pause is cut at its quietest moment.

The final transcript is the pieces' texts in order; each piece is decoded with the text before it
as context. A decoder that can (`StretchDecoder`: Whisper, in its full 30 s window) hears the
committed pieces again as one stretch of up to 29 s, in the background and only while the user
speaks (`stretches.py`); once done its text stands in for those pieces (long turns hear better
in long stretches), and the turn's end never waits for it. A turn that goes on from the last one
(the user paused mid-thought and the turn was decided too early: `rehear`) starts with the last
turn's last piece, so words on both sides of that pause are decoded together; its transcripts
then hold the last turn's words too (`revises`).
If that second hearing lost the first one's words (Whisper can skip what comes before a pause),
the first hearing's words stay and only what follows them is decoded.
The decoder only needs `sample_rate`, `config` (an `STTConfig`) and `decode_async`.
A decoder that also has `decode_timed_async` (Whisper) gives its final decodes' word times: the
transcript's `words`, in seconds from the start of the turn's audio as pushed (each piece's words
shifted by where it begins); without it (Moonshine) `words` is empty. It is told which pieces
come after a committed one (`later`): Whisper hears those with its `later_model`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import Protocol, runtime_checkable

import numpy as np

from voxloop.config import STTConfig
from voxloop.providers.base import PartialCallback, Samples, STTStream, Transcript, Word
from voxloop.providers.stt.decoding import Decoding, join_texts, joined, shift, timed
from voxloop.providers.stt.pieces import quietest_point
from voxloop.providers.stt.stretches import StretchDecoder, Stretches

CONTEXT_WORDS = 40  # words of what came before, given to a piece's decode as context


class PieceDecoder(Protocol):
    sample_rate: int
    config: STTConfig

    async def decode_async(self, audio: Samples, final: bool = False, context: str = "") -> str: ...


@runtime_checkable
class TimedDecoder(Protocol):
    """A decoder whose final decodes tell where each word was said (seconds into `audio`);
    `later`: the piece comes after a committed one (a long turn), which it may hear with another
    model (Whisper's `later_model`)."""

    async def decode_timed_async(
        self, audio: Samples, context: str = "", later: bool = False
    ) -> Decoding: ...


def heard_again(before: str, after: str) -> bool:
    """Whether `after`, a decode of audio that begins with a stretch decoded before as `before`,
    still begins with most of that stretch's sounds (Whisper can skip what comes before a pause).
    Compared letter by letter: a second hearing that spells the same sounds otherwise ("reply
    sheet", "replied he") is still a hearing of them."""
    old, new = _letters(before), _letters(after)
    new = new[: len(old) + 6]
    found = sum(b.size for b in SequenceMatcher(a=old, b=new, autojunk=False).get_matching_blocks())
    return 2 * found >= len(old)


def _letters(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


class DecoderStream(STTStream):
    def __init__(self, stt: PieceDecoder, on_partial: PartialCallback | None = None) -> None:
        self._stt = stt
        self._cfg = stt.config
        self._rate = stt.sample_rate
        self._on_partial = on_partial
        self._chunks: list[Samples] = []
        self._n = 0  # samples pushed this turn
        self._start = 0  # where the open piece begins
        self._pieces: list[asyncio.Task[Decoding]] = []  # final decodes of the committed pieces, in order
        self._pause: tuple[int, asyncio.Task[Decoding]] | None = None  # (end, decode of the open piece)
        self._task: asyncio.Task[None] | None = None  # the partial decode in flight
        self._last_decode_at = 0
        self._last_cost = 0.0
        self._heard_partial = False  # a partial of this turn reached `on_partial`
        self._context = ""  # the user's words just before this turn (`continues`)
        self._keywords = ""  # this stream's domain terms (`keywords`), ahead of any context
        self._revising = ""  # the last turn's text, when this turn re-hears its end (`_context` is then
        # the words before that end, and part of this turn's text)
        # the last turn: (its last piece's audio, the words before that piece, all its words, that
        # piece's decode, its words timed from the piece's start)
        self._last: tuple[Samples, str, str, Decoding] | None = None
        # re-hearing: the last piece as first decoded, and how much audio it was
        self._heard: tuple[Decoding, int] | None = None
        self._speaking = asyncio.Event()  # not paused (`_paused`): background work may use the cores
        self._speaking.set()
        # the committed pieces heard again in stretches (a decoder that can, unless configured off)
        self._stretches = (
            Stretches(
                stt, self._rate, self._speaking, self._audio, lambda: self._with_context(""), self._adopted
            )
            if self._cfg.stretch and isinstance(stt, StretchDecoder)
            else None
        )

    # -- audio -------------------------------------------------------------------------------------
    def _audio(self) -> Samples:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.zeros(0, np.float32)

    async def push(self, audio: Samples) -> None:
        self._chunks.append(audio.astype(np.float32, copy=False))
        self._n += len(audio)
        if self._paused:
            return  # the pause decode covers the open piece; what follows is silence so far
        rate = self._rate
        if self._n - self._start > int(self._cfg.max_piece_s * rate):
            self._cut_long_piece()
        # Partials no more often than every interval, and decoding at most half the time: on a busy
        # machine they would otherwise take a whole core from the language model's prefill.
        gap = max(self._cfg.partial_interval_s, 2 * self._last_cost)
        if (self._task is None or self._task.done()) and self._n - self._last_decode_at >= int(gap * rate):
            self._last_decode_at = self._n
            self._task = asyncio.get_running_loop().create_task(self._partial(self._start, self._n))

    def _cut_long_piece(self) -> None:
        """Speech with no pause for `max_piece_s`: commit its first part, cut at the quietest moment
        of its second half."""
        audio = self._audio()
        half = int(self._cfg.max_piece_s * self._rate / 2)
        cut = quietest_point(audio, self._rate, self._start + half, self._n - int(0.3 * self._rate))
        self._commit(self._decode_piece(self._start, cut), cut)

    # -- decodes -----------------------------------------------------------------------------------
    def _decode_piece(self, start: int, end: int) -> asyncio.Task[Decoding]:
        """The final decode of audio[start:end], after the pieces before it (their text is its
        context); its words' times from the start of the turn."""
        before = list(self._pieces)
        audio = self._audio()[start:end]
        stt = self._stt
        heard = self._heard if start == 0 else None

        async def run() -> Decoding:
            context = await self._text_of(before) if self._cfg.piece_context else ""
            context = self._with_context(context)
            if not isinstance(stt, TimedDecoder):
                return Decoding(await stt.decode_async(audio, final=True, context=context))
            d = await stt.decode_timed_async(audio, context, later=start > 0)
            d = Decoding(d.text, shift(d.words, start / self._rate))
            if heard is None or heard_again(heard[0].text, d.text):
                return d
            # it lost the words heard before: keep those, and hear only what came after them
            first, k = heard
            rest = await stt.decode_timed_async(audio[k:], self._with_context(first.text))
            return joined([first, Decoding(rest.text, shift(rest.words, k / self._rate))])

        return asyncio.get_running_loop().create_task(run())

    def _commit(self, piece: asyncio.Task[Decoding], end: int) -> None:
        """`piece`, the decode of the open piece up to `end`, is final; a new piece starts there."""
        self._pieces.append(piece)
        self._start = end
        if self._stretches is not None:
            self._stretches.committed(end)

    def _adopted(self) -> None:
        """A stretch now stands in for its pieces: a partial follows at once, so the language
        model, fed the partials, reads the turn's words as they now are before the turn can end.
        (Taken at a pause, a stretch would change the words the reply is begun on, and the model
        would read them all again then: long turns, `bench latency`, first token p50 670 -> 1466
        ms.)"""
        self._last_decode_at = -self._n  # the next push decodes a partial

    async def _committed(self, pieces: list[asyncio.Task[Decoding]]) -> Decoding:
        """The committed `pieces`, as heard again in stretches where they were (`Stretches.heard`),
        the rest as decoded one by one."""
        one_by_one = [await asyncio.shield(p) for p in pieces]
        return self._stretches.heard(one_by_one) if self._stretches is not None else joined(one_by_one)

    def _with_context(self, text: str) -> str:
        words = join_texts([self._context, text]).split()
        recent = " ".join(words[-CONTEXT_WORDS:])
        return f"{self._keywords}. {recent}" if self._keywords and recent else self._keywords or recent

    @staticmethod
    async def _text_of(pieces: list[asyncio.Task[Decoding]]) -> str:
        return joined([await asyncio.shield(p) for p in pieces]).text

    @property
    def _paused(self) -> bool:
        """The VAD heard a pause and the user has not gone on."""
        return not self._speaking.is_set()

    async def _partial(self, start: int, end: int) -> None:
        pieces = list(self._pieces)
        t0 = time.perf_counter()
        before = (await self._committed(pieces)).text  # the words the language model reads
        context = self._with_context(before) if self._cfg.piece_context else self._context
        text = await self._stt.decode_async(self._audio()[start:end], context=context)
        self._last_cost = time.perf_counter() - t0
        if self._on_partial is None or not text:
            return
        before = self._own(before)
        # A partial that lands during a pause is older than the pause decode: keep it to yourself,
        # unless the turn has had none yet and the pause decode is not ready (a busy machine).
        pause = self._pause
        if self._paused and (self._heard_partial or pause is None or pause[1].done()):
            return
        self._heard_partial = True
        self._on_partial(
            Transcript(join_texts([before, text]), False, end / self._rate, revises=self._revising)
        )

    # -- hints from the VAD ------------------------------------------------------------------------
    def continues(self, text: str) -> None:
        if self._revising:
            return  # this turn already hears the last one's end again, after the words before it
        self._context = text.strip()

    def rehear(self, text: str, gap: Samples) -> int:
        last = self._last
        if last is None or last[2] != text.strip() or self._pieces:
            return 0  # not the turn this stream heard last (a dropped sound came between), or too late
        tail, before, whole, piece = last
        self._heard = (piece, len(tail))
        head = np.concatenate([tail, gap.astype(np.float32, copy=False)])
        k = len(head)
        self._chunks = [head, *self._chunks]
        self._n += k
        self._last_decode_at += k
        self._context, self._revising, self._last = before, whole, None
        if self._task is not None:
            self._task.cancel()  # a partial of this turn's audio alone
        if self._pause is not None:  # decode the pause again, with what now comes before it
            self._pause[1].cancel()
            self.speech_paused()
        return k

    def _own(self, text: str) -> str:
        """`text`, after the last turn's words this turn revises."""
        return join_texts([self._context, text]) if self._revising else text

    def _words(self, d: Decoding) -> tuple[Word, ...]:
        """`d`'s words, unless the transcript also holds words of the last turn that this one did
        not hear again (they have no time on this turn's clock): then none."""
        return () if self._revising and self._context else d.words

    def keywords(self, words: Sequence[str]) -> None:
        self._keywords = ", ".join(w.strip() for w in words if w.strip())

    def speech_paused(self) -> None:
        self._speaking.clear()  # the pause decode covers what follows: no partials until resumed
        pause = (self._n, self._decode_piece(self._start, self._n))
        self._pause = pause
        if self._on_partial is not None and not self._heard_partial and not self._pieces:
            pause[1].add_done_callback(lambda task: self._pause_as_partial(pause, task))

    def _pause_as_partial(
        self, pause: tuple[int, asyncio.Task[Decoding]], task: asyncio.Task[Decoding]
    ) -> None:
        """A turn too short for any partial to land (or a busy machine that had none ready): its
        pause decode, once done and still current, is its partial, so a listener hears words
        before the turn is decided."""
        if task.cancelled() or task.exception() is not None or pause is not self._pause:
            return
        if self._on_partial is not None and not self._heard_partial and task.result().text:
            self._heard_partial = True
            text = self._own(task.result().text)
            self._on_partial(Transcript(text, False, pause[0] / self._rate, revises=self._revising))

    def speech_resumed(self) -> None:
        self._speaking.set()
        self._commit_pause()
        if self._stretches is not None:
            self._stretches.resumed()

    def _commit_pause(self) -> None:
        """The speech goes on after a pause: its decode is the open piece's final text if that
        piece is long enough to stand alone, else it is dropped."""
        pause, self._pause = self._pause, None
        if pause is None:
            return
        end, task = pause
        if end - self._start >= int(self._cfg.commit_min_s * self._rate):
            self._commit(task, end)  # a whole stretch of speech: its decode is final
            self._last_decode_at = self._n
        else:  # too short to stand alone: its text is out of date (a decode already running ends on
            task.cancel()  # its own; one still queued behind others never runs)

    # -- results -----------------------------------------------------------------------------------
    async def pause_transcript(self) -> Transcript | None:
        pause = self._pause
        if pause is None:
            return None
        end, task = pause
        try:
            d = joined([await self._committed(list(self._pieces)), await asyncio.shield(task)])
        except asyncio.CancelledError:
            if task.cancelled() and pause is not self._pause:
                return None  # dropped: the user went on before it was decoded
            raise
        if pause is not self._pause:
            return None  # the user went on while it ran
        return Transcript(self._own(d.text), True, end / self._rate, self._words(d), revises=self._revising)

    async def finalize(self) -> Transcript:
        n = self._n
        if self._pause is not None:
            end, last = self._pause  # no speech since the pause: the rest is silence
        elif n > self._start:
            end, last = n, self._decode_piece(self._start, n)
        else:
            end, last = n, None
        committed = await self._committed(list(self._pieces))
        d = joined([committed, await asyncio.shield(last)]) if last is not None else committed
        text, revises, words = self._own(d.text), self._revising, self._words(d)
        audio = self._audio()
        self._last, self._heard = None, None
        piece = last.result() if last is not None else None
        if piece is not None and timed([piece]):  # what a turn that goes on from this one hears again
            before = self._own(committed.text)
            piece = Decoding(piece.text, shift(piece.words, -self._start / self._rate))
            self._last = (audio[self._start : n].copy(), before, text.strip(), piece)
        rest = audio[n:]  # audio pushed while this ran belongs to the next turn
        self._chunks, self._n = ([rest] if len(rest) else []), len(rest)
        self._start, self._pieces, self._pause, self._last_decode_at = 0, [], None, 0
        if self._stretches is not None:  # a stretch not done by now: the turn is heard without it
            self._stretches.reset()
        self._context, self._heard_partial, self._revising = "", False, ""
        self._speaking.set()
        return Transcript(text, True, end / self._rate, words, revises=revises)

    async def settle(self) -> None:
        """The stretch under way, done unless the user has paused (`STTStream.settle`): in real
        time the user speaks on while it runs (it starts 12 s or more into the turn and takes
        1-2 s), so fed faster it is waited for."""
        if self._stretches is not None:
            await self._stretches.settle()

    async def aclose(self) -> None:
        stretch = self._stretches.task() if self._stretches else None
        tasks = [self._task, *self._pieces, self._pause[1] if self._pause else None, stretch]
        for task in tasks:
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
