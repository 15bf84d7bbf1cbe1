"""A recogniser that hears scripted words: one final transcript per `finalize`, in order.

`pause_transcript` (after `speech_paused`, before any `speech_resumed`) returns the next scripted
pause text if there is one, else the next final text (what the turn will be if it ends now).
With `partial_every_s`, every that many seconds of pushed audio `on_partial` gets the next final text.
With `word_every_s`, a final's words have times, as a recogniser that aligns them gives them: in
seconds from the start of the turn's audio as pushed, the first at the turn's first non-silent
sample, each next one `word_every_s` later (lasting 0.1 s), confidence 0.9.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np

from voxloop.providers.base import STT, PartialCallback, Samples, STTStream, Transcript, Word


class FakeSTTStream(STTStream):
    def __init__(self, stt: FakeSTT, on_partial: PartialCallback | None) -> None:
        self.stt, self.on_partial = stt, on_partial
        self.log: list[str] = []  # "paused", "resumed", "pause_transcript", "finalize" in call order
        self.audio: list[Samples] = []  # every chunk pushed, across turns
        self.turn_samples = 0  # samples pushed since the last finalize
        self.closed = False
        self._paused = False
        self._since_partial = 0
        self.last_turn: Samples = np.zeros(0, np.float32)  # the last finalized turn's audio
        self.reheard: Samples = np.zeros(0, np.float32)  # what `rehear` took back this turn

    @property
    def pushed(self) -> Samples:
        return np.concatenate(self.audio) if self.audio else np.zeros(0, np.float32)

    def _next_final(self) -> str:
        return self.stt.finals[0] if self.stt.finals else ""

    async def push(self, audio: Samples) -> None:
        self.audio.append(np.array(audio, np.float32))
        self.turn_samples += len(audio)
        every = self.stt.partial_every_s
        if every is not None and self.on_partial is not None:
            self._since_partial += len(audio)
            if self._since_partial >= every * self.stt.sample_rate:
                self._since_partial = 0
                self.on_partial(
                    Transcript(self._next_final(), False, self.turn_samples / self.stt.sample_rate)
                )

    def speech_paused(self) -> None:
        self.log.append("paused")
        self._paused = True

    def speech_resumed(self) -> None:
        self.log.append("resumed")
        self._paused = False

    def continues(self, text: str) -> None:
        self.log.append(f"continues: {text}")

    def rehear(self, text: str, gap: Samples) -> int:
        """With `FakeSTT(rehears=True)`: takes back the whole last turn, as it was pushed, and the gap."""
        self.log.append(f"rehear: {text}")
        if not self.stt.rehears or not len(self.last_turn):
            return 0
        self.reheard, self.reheard_text = np.concatenate([self.last_turn, gap]), text
        pushed, cut = self.pushed, len(self.pushed) - self.turn_samples
        self.audio = [pushed[:cut], self.reheard, pushed[cut:]]  # this turn's audio goes after it
        self.turn_samples += len(self.reheard)
        self.last_turn = np.zeros(0, np.float32)
        return len(self.reheard)

    def keywords(self, words: Sequence[str]) -> None:
        self.log.append(f"keywords: {', '.join(words)}")

    async def pause_transcript(self) -> Transcript | None:
        self.log.append("pause_transcript")
        if self.stt.pause_delay:
            await asyncio.sleep(self.stt.pause_delay)
        if not self._paused:
            return None
        text = self.stt.pauses.popleft() if self.stt.pauses else self._next_final()
        return Transcript(text, True, self.turn_samples / self.stt.sample_rate)

    async def finalize(self) -> Transcript:
        self.log.append("finalize")
        if self.stt.finalize_delay:
            await asyncio.sleep(self.stt.finalize_delay)
        text = self.stt.finals.popleft() if self.stt.finals else ""
        words = self._timed(text)
        n, self.turn_samples, self._paused, self._since_partial = self.turn_samples, 0, False, 0
        self.last_turn = self.pushed[len(self.pushed) - n :]
        revises = self.reheard_text if len(self.reheard) else ""
        self.reheard = np.zeros(0, np.float32)
        return Transcript(text, True, n / self.stt.sample_rate, words, revises=revises)

    def _timed(self, text: str) -> tuple[Word, ...]:
        every = self.stt.word_every_s
        turn = self.pushed[len(self.pushed) - self.turn_samples :]
        sound = np.flatnonzero(turn)
        if every is None or not len(sound):
            return ()
        first = sound[0] / self.stt.sample_rate
        return tuple(
            Word(t, first + i * every, first + i * every + 0.1, 0.9) for i, t in enumerate(text.split())
        )

    async def aclose(self) -> None:
        self.closed = True


class FakeSTT(STT):
    name = "fake-stt"

    def __init__(
        self,
        finals: Iterable[str] = (),
        *,
        pauses: Iterable[str] = (),
        partial_every_s: float | None = None,
        pause_delay: float = 0.0,
        finalize_delay: float = 0.0,
        word_every_s: float | None = None,
        rehears: bool = False,
    ) -> None:
        self.rehears = rehears
        self.finals: deque[str] = deque(finals)
        self.pauses: deque[str] = deque(pauses)
        self.partial_every_s = partial_every_s
        self.pause_delay = pause_delay  # decode time modelled on the loop clock
        self.finalize_delay = finalize_delay
        self.word_every_s = word_every_s
        self.streams: list[FakeSTTStream] = []

    def stream(self, on_partial: PartialCallback | None = None) -> FakeSTTStream:
        s = FakeSTTStream(self, on_partial)
        self.streams.append(s)
        return s
