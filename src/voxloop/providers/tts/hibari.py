"""hibari "heart" (a distilled Kokoro voice, int8 ONNX, 24 kHz): one chunk per sentence."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Iterator
from typing import Any

from voxloop.audio.pcm import normalize_loudness
from voxloop.config import TTSConfig
from voxloop.errors import ModelMissing
from voxloop.providers._imports import require
from voxloop.providers._worker import Worker
from voxloop.providers.base import TTS, Samples

log = logging.getLogger("voxloop.tts")


class HibariTTS(TTS):
    name = "hibari"
    sample_rate = 24000

    def __init__(self, config: TTSConfig | None = None) -> None:
        self.config = config or TTSConfig()
        self._tts: Any = None
        self._worker = Worker("tts")

    async def load(self) -> None:
        if self._tts is None:
            await self._worker.run(self._load)

    def _load(self) -> None:
        hibari = require("hibari", "hibari")
        from hibari.voices import voice_path

        try:
            path = voice_path(self.config.voice, download_missing=False)
        except (FileNotFoundError, ValueError) as e:
            raise ModelMissing(
                f"hibari voice '{self.config.voice}' is not on this machine (only 'heart' ships in the package)",
                "use --voice heart",
            ) from e
        t0 = time.perf_counter()
        self._tts = hibari.Hibari(voice=self.config.voice, model=path, threads=self.config.threads)
        self.sample_rate = int(self._tts.sample_rate)
        list(self._chunks("Hello."))  # warm-up: loads the G2P and runs the model once
        log.info("tts hibari/%s loaded in %.1f s", self.config.voice, time.perf_counter() - t0)

    def _chunks(self, text: str, speed: float = 1.0) -> Iterator[Samples]:
        for audio in self._tts.stream(text, speed=self.config.speed * speed, seed=0):
            yield normalize_loudness(audio, self.config.loudness_dbfs)

    def synthesize(self, text: str) -> AsyncGenerator[Samples, None]:
        return self.synthesize_with(text)

    def synthesize_with(self, text: str, speed: float = 1.0) -> AsyncGenerator[Samples, None]:
        """`speed` times the configured pace, kept within the model's range (0.5-2.0 overall)."""
        if self._tts is None:
            raise RuntimeError("HibariTTS.load() must run before synthesize()")
        if speed != 1.0:
            speed = min(2.0, max(0.5, self.config.speed * speed)) / self.config.speed
        return self._worker.iterate(lambda: self._chunks(text, speed))

    async def aclose(self) -> None:
        self._worker.shutdown()
