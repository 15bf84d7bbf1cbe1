"""A voice that says a deterministic tone per text: `seconds_per_word` per word, at 24 kHz."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import numpy as np

from voxloop.providers.base import TTS, Samples


class FakeTTS(TTS):
    name = "fake-tts"
    sample_rate = 24000

    def __init__(
        self,
        seconds_per_word: float = 0.25,
        chunk_s: float = 0.25,
        delay: float = 0.0,
        freq: float = 220.0,
        amplitude: float = 0.3,
    ) -> None:
        self.seconds_per_word, self.chunk_s, self.delay = seconds_per_word, chunk_s, delay
        self.freq, self.amplitude = freq, amplitude
        self.texts: list[str] = []

    def tone_for(self, text: str) -> Samples:
        n = int(round(len(text.split()) * self.seconds_per_word * self.sample_rate))
        t = np.arange(n) / self.sample_rate
        return (self.amplitude * np.sin(2 * np.pi * self.freq * t)).astype(np.float32)

    async def synthesize(self, text: str) -> AsyncGenerator[Samples, None]:
        self.texts.append(text)
        if self.delay:
            await asyncio.sleep(self.delay)  # time to the first audio, on the loop clock
        audio = self.tone_for(text)
        step = max(1, int(self.chunk_s * self.sample_rate))
        for i in range(0, len(audio), step):
            yield audio[i : i + step]
