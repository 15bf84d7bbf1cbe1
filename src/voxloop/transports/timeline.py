"""A virtual speaker on the event loop's clock: audio plays in real time and is kept, with where
it started, so a conversation can be written to one WAV with both sides on one timeline."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from voxloop.providers.base import Samples
from voxloop.transports.base import AudioSink


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

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def play(self, audio: Samples) -> None:
        now = self._now()
        start = max(now, self._end)
        self.placed.append(Placed(start, audio))
        self._end = start + len(audio) / self.sample_rate
        self._queued += len(audio)

    def stop(self) -> None:
        now = self._now()
        kept: list[Placed] = []
        for p in self.placed:
            played = int(round((now - p.start) * self.sample_rate))
            if played >= len(p.audio):
                kept.append(p)
            elif played > 0:
                self._dropped += len(p.audio) - played
                kept.append(Placed(p.start, p.audio[:played]))
            else:
                self._dropped += len(p.audio)
        self.placed = kept
        self._end = min(self._end, now)

    def played_samples(self) -> int:
        now = self._now()
        return sum(min(len(p.audio), max(0, int((now - p.start) * self.sample_rate))) for p in self.placed)

    def queued_samples(self) -> int:
        return self._queued

    def busy(self) -> bool:
        return self._end > self._now()

    async def drained(self) -> None:
        # The virtual speaker consumes audio in real time: wait out what is still queued.
        while (left := self._end - self._now()) > 0:  # noqa: ASYNC110 - the end moves as audio is queued
            await asyncio.sleep(left)

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
