"""A virtual speaker on the event loop's clock: audio plays in real time and is kept, with where
it started, so a conversation can be written to one WAV with both sides on one timeline."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from voxloop.providers.base import Samples
from voxloop.transports.base import AudioSink, window


@dataclass
class Placed:
    start: float  # clock time the first sample plays
    audio: Samples


class TimelineSink(AudioSink):
    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.placed: list[Placed] = []
        self._end = 0.0  # clock time when the queue runs dry
        self._queued = 0
        self._dropped = 0
        self._held: list[Samples] = []  # what pause took off the timeline, for resume
        self._playing = asyncio.Event()  # cleared while paused
        self._playing.set()

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def play(self, audio: Samples) -> None:
        self._queued += len(audio)
        if self._playing.is_set():
            self._place(audio)
        else:
            self._held.append(audio)  # paused: it plays after resume

    def _place(self, audio: Samples) -> None:
        start = max(self._now(), self._end)
        self.placed.append(Placed(start, audio))
        self._end = start + len(audio) / self.sample_rate

    def _cut(self) -> list[Samples]:
        """Take everything not yet played off the timeline; returns it in playing order."""
        now = self._now()
        kept: list[Placed] = []
        rest: list[Samples] = []
        for p in self.placed:
            played = int(round((now - p.start) * self.sample_rate))
            if played >= len(p.audio):
                kept.append(p)
                continue
            if played > 0:
                kept.append(Placed(p.start, p.audio[:played]))
            rest.append(p.audio[max(0, played) :])
        self.placed = kept
        self._end = min(self._end, now)
        return rest

    def stop(self) -> None:
        self._dropped += sum(len(a) for a in self._cut()) + sum(len(a) for a in self._held)
        self._held = []
        self._playing.set()

    def pause(self) -> None:
        if self._playing.is_set():
            self._held = self._cut()
            self._playing.clear()

    def resume(self) -> None:
        if not self._playing.is_set():
            held, self._held = self._held, []
            self._playing.set()
            for audio in held:
                self._place(audio)

    @property
    def paused(self) -> bool:
        return not self._playing.is_set()

    def played_samples(self) -> int:
        now = self._now()
        return sum(
            min(len(p.audio), max(0, int((now - p.start) * self.sample_rate + 1e-6))) for p in self.placed
        )

    def queued_samples(self) -> int:
        return self._queued

    def busy(self) -> bool:
        return self._end > self._now() or bool(self._held)

    async def drained(self) -> None:
        # The virtual speaker consumes audio in real time: wait out what is still queued, and
        # while paused, wait for resume (or stop).
        while True:
            await self._playing.wait()
            left = self._end - self._now()
            if left <= 0:
                return
            await asyncio.sleep(left)

    def played_audio(self, t0: float, t1: float) -> Samples:
        return window(((p.start, p.audio) for p in reversed(self.placed)), t0, t1, self.sample_rate)

    def render(self, t0: float, duration_s: float) -> Samples:
        """Everything played, placed on a timeline that starts at clock time `t0`."""
        n = int(duration_s * self.sample_rate)
        out = np.zeros(n, np.float32)
        for p in self.placed:
            i = int(round((p.start - t0) * self.sample_rate))
            j = min(n, i + len(p.audio))
            if j > i >= 0:
                out[i:j] += p.audio[: j - i]
        return out
